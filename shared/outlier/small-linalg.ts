/**
 * Dense k x k linear algebra for the outlier detector (k <= a few hundred): tfjs has no inverse, Cholesky or
 * symmetric eigensolver, and at this size plain loops in float64 cost microseconds to milliseconds.
 */

/** Lower-triangular L (row-major k x k) with L L^T = a; a must be symmetric positive definite. */
export function cholesky(a: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * k + j]!;
      for (let p = 0; p < j; p++) s -= l[i * k + p]! * l[j * k + p]!;
      if (i === j) {
        // A tiny jitter keeps a rank-deficient (near-singular) matrix factorizable.
        l[i * k + i] = Math.sqrt(Math.max(s, 1e-12));
      } else {
        l[i * k + j] = s / l[j * k + j]!;
      }
    }
  }
  return l;
}

/** The inverse of a lower-triangular L, itself lower-triangular. */
export function invertLower(l: Float64Array, k: number): Float64Array {
  const inv = new Float64Array(k * k);
  for (let c = 0; c < k; c++) {
    inv[c * k + c] = 1 / l[c * k + c]!;
    for (let i = c + 1; i < k; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s -= l[i * k + p]! * inv[p * k + c]!;
      inv[i * k + c] = s / l[i * k + i]!;
    }
  }
  return inv;
}

const EPS = 2.220446049250313e-16;

/**
 * Eigen-decomposition of a symmetric k x k matrix: eigenvalues descending, and the matching eigenvectors as the
 * rows of `vectors` (row-major k x k). Householder reduction to tridiagonal form, then implicit QR steps with
 * Wilkinson shifts: about 5x faster than cyclic Jacobi at k = 74 (the detector's subspace), with residuals as
 * small. `m` is symmetrized first: a Gram matrix from a float32 matMul is symmetric only to rounding.
 */
export function symmetricEigen(m: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const a = new Float64Array(k * k);
  let norm = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) {
      a[i * k + j] = (m[i * k + j]! + m[j * k + i]!) / 2;
      norm += a[i * k + j]! ** 2;
    }
  if (!Number.isFinite(norm)) {
    // Nothing converges on NaN or infinity: answer NaN eigenvalues (which no rank test counts) at once, rather
    // than spinning through the step limit.
    const vectors = new Float64Array(k * k);
    for (let i = 0; i < k; i++) vectors[i * k + i] = 1;
    return { values: new Float64Array(k).fill(Number.NaN), vectors };
  }
  const rows = tridiagonalize(a, k);
  const d = new Float64Array(k);
  const e = new Float64Array(Math.max(0, k - 1));
  for (let i = 0; i < k; i++) d[i] = a[i * k + i]!;
  for (let i = 0; i + 1 < k; i++) e[i] = a[(i + 1) * k + i]!;
  diagonalizeTridiagonal({ d, e, rows, k, norm: Math.sqrt(norm) });
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => d[y]! - d[x]!);
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    vectors.set(rows.subarray(src * k, src * k + k), dst * k);
  });
  return { values, vectors };
}

/**
 * Reduces symmetric `a` (overwritten) to tridiagonal T = Q^T a Q by Householder reflections, column by column;
 * returns Q^T (row-major), whose rows the QR steps then rotate into eigenvectors.
 */
function tridiagonalize(a: Float64Array, k: number): Float64Array {
  const qt = new Float64Array(k * k);
  for (let i = 0; i < k; i++) qt[i * k + i] = 1;
  const v = new Float64Array(k);
  const w = new Float64Array(k);
  for (let c = 0; c < k - 2; c++) {
    let tail = 0;
    for (let i = c + 2; i < k; i++) tail += a[i * k + c]! ** 2;
    if (tail === 0) continue;
    const x0 = a[(c + 1) * k + c]!;
    const alpha = x0 > 0 ? -Math.sqrt(tail + x0 * x0) : Math.sqrt(tail + x0 * x0);
    // The reflection I - 2 v v^T maps the column below the diagonal onto alpha e1; alpha takes the sign that
    // avoids cancellation in x - alpha e1.
    let vn = 0;
    for (let i = c + 1; i < k; i++) {
      v[i] = a[i * k + c]! - (i === c + 1 ? alpha : 0);
      vn += v[i]! ** 2;
    }
    vn = Math.sqrt(vn);
    for (let i = c + 1; i < k; i++) v[i]! /= vn;
    reflectTrailing({ a, k, c, v, w });
    a[(c + 1) * k + c] = alpha;
    a[c * k + c + 1] = alpha;
    for (let i = c + 2; i < k; i++) {
      a[i * k + c] = 0;
      a[c * k + i] = 0;
    }
    reflectRows({ m: qt, k, from: c + 1, v, w });
  }
  return qt;
}

/** H A H on the trailing block (rows and columns > c), H = I - 2 v v^T: A - 2 v w^T - 2 w v^T, w = Av - (v.Av) v. */
function reflectTrailing(o: {
  a: Float64Array;
  k: number;
  c: number;
  v: Float64Array;
  w: Float64Array;
}): void {
  const { a, k, c, v, w } = o;
  let vAv = 0;
  for (let i = c + 1; i < k; i++) {
    let s = 0;
    for (let j = c + 1; j < k; j++) s += a[i * k + j]! * v[j]!;
    w[i] = s;
    vAv += v[i]! * s;
  }
  for (let i = c + 1; i < k; i++) w[i] = w[i]! - vAv * v[i]!;
  for (let i = c + 1; i < k; i++) {
    const vi = 2 * v[i]!;
    const wi = 2 * w[i]!;
    for (let j = c + 1; j < k; j++) a[i * k + j] = a[i * k + j]! - vi * w[j]! - wi * v[j]!;
  }
}

/** H M for the rows from `from` on, H = I - 2 v v^T (v zero before `from`). */
function reflectRows(o: {
  m: Float64Array;
  k: number;
  from: number;
  v: Float64Array;
  w: Float64Array;
}): void {
  const { m, k, from, v, w } = o;
  w.fill(0);
  for (let i = from; i < k; i++) {
    const vi = v[i]!;
    for (let j = 0; j < k; j++) w[j] = w[j]! + vi * m[i * k + j]!;
  }
  for (let i = from; i < k; i++) {
    const vi = 2 * v[i]!;
    for (let j = 0; j < k; j++) m[i * k + j] = m[i * k + j]! - vi * w[j]!;
  }
}

/**
 * Drives the tridiagonal (diagonal d, off-diagonal e) to diagonal by implicit symmetric QR steps, each on the
 * lowest unreduced block, applying every rotation to `rows` as well.
 */
function diagonalizeTridiagonal(o: {
  d: Float64Array;
  e: Float64Array;
  rows: Float64Array;
  k: number;
  norm: number;
}): void {
  const { d, e, k, norm } = o;
  // An off-diagonal entry at rounding level of its neighbours, or of the whole matrix (a rank-deficient Gram's
  // zero eigenvalues have no neighbours to be small against), splits the matrix.
  const negligible = (i: number) =>
    Math.abs(e[i]!) <= EPS * (Math.abs(d[i]!) + Math.abs(d[i + 1]!)) || Math.abs(e[i]!) <= 1e-14 * norm;
  let hi = k - 1;
  let steps = 0;
  while (hi > 0) {
    if (negligible(hi - 1)) {
      e[hi - 1] = 0;
      hi--;
      continue;
    }
    let lo = hi - 1;
    while (lo > 0 && !negligible(lo - 1)) lo--;
    // Wilkinson-shifted QR converges for every symmetric tridiagonal, about two steps per eigenvalue.
    if (++steps > 30 * k) throw new Error(`symmetricEigen: no convergence after ${30 * k} QR steps`);
    qrStep({ ...o, lo, hi });
  }
}

/** One implicit QR step on the block lo..hi, shifted by the trailing 2x2's eigenvalue nearer d[hi]. */
function qrStep(o: {
  d: Float64Array;
  e: Float64Array;
  rows: Float64Array;
  k: number;
  lo: number;
  hi: number;
}): void {
  const { d, e, rows, k, lo, hi } = o;
  const half = (d[hi - 1]! - d[hi]!) / 2;
  const eh = e[hi - 1]!;
  const shift = d[hi]! - (eh * eh) / (half + (half >= 0 ? 1 : -1) * Math.hypot(half, eh));
  let x = d[lo]! - shift;
  let z = e[lo]!;
  for (let c = lo; c < hi; c++) {
    // The rotation G of rows/columns c, c+1 with G^T [x; z] = [r; 0]: at c = lo it starts the step, later it
    // chases the bulge z that the previous rotation left at (c + 1, c - 1).
    const r = Math.hypot(x, z);
    const cs = r === 0 ? 1 : x / r;
    const sn = r === 0 ? 0 : -z / r;
    if (c > lo) e[c - 1] = r;
    const [dc, dn, ec] = [d[c]!, d[c + 1]!, e[c]!];
    d[c] = cs * cs * dc - 2 * cs * sn * ec + sn * sn * dn;
    d[c + 1] = sn * sn * dc + 2 * cs * sn * ec + cs * cs * dn;
    e[c] = cs * sn * (dc - dn) + (cs * cs - sn * sn) * ec;
    if (c + 1 < hi) {
      x = e[c]!;
      z = -sn * e[c + 1]!;
      e[c + 1] = cs * e[c + 1]!;
    }
    for (let j = 0; j < k; j++) {
      const a = rows[c * k + j]!;
      const b = rows[(c + 1) * k + j]!;
      rows[c * k + j] = cs * a - sn * b;
      rows[(c + 1) * k + j] = sn * a + cs * b;
    }
  }
}
