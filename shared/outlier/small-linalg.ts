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

/**
 * Eigen-decomposition of a symmetric k x k matrix by cyclic Jacobi rotations: eigenvalues descending, and the
 * matching eigenvectors as the rows of `vectors` (row-major k x k).
 */
export function symmetricEigen(m: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  let norm = 0;
  for (let i = 0; i < k * k; i++) norm += a[i]! ** 2;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += a[p * k + q]! ** 2;
    // Relative to the matrix's size: Jacobi converges quadratically, so this takes about ten sweeps.
    if (off <= 1e-24 * norm || off === 0) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = a[p * k + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * k + q]! - a[p * k + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = a[r * k + p]!;
          const arq = a[r * k + q]!;
          a[r * k + p] = c * arp - s * arq;
          a[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = a[p * k + r]!;
          const aqr = a[q * k + r]!;
          a[p * k + r] = c * apr - s * aqr;
          a[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const vpr = v[p * k + r]!;
          const vqr = v[q * k + r]!;
          v[p * k + r] = c * vpr - s * vqr;
          v[q * k + r] = s * vpr + c * vqr;
        }
      }
    }
  }
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => a[y * k + y]! - a[x * k + x]!);
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  order.forEach((src, dst) => {
    values[dst] = a[src * k + src]!;
    vectors.set(v.subarray(src * k, src * k + k), dst * k);
  });
  return { values, vectors };
}
