import { describe, expect, it } from 'vitest';
import { createRng } from '../train/numerics.js';
import { cholesky, invertLower, symmetricEigen } from './small-linalg.js';

function randomSymmetric(k: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const m = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j <= i; j++) {
      const v = rng() - 0.5;
      m[i * k + j] = v;
      m[j * k + i] = v;
    }
  return m;
}

/** A Gram matrix X^T X of n random rows whose column scales fall off over `decades` powers of ten. */
function decayingGram(k: number, n: number, decades: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const x = Float64Array.from({ length: n * k }, (_, i) => (rng() - 0.5) * 10 ** (-decades * ((i % k) / k)));
  const g = new Float64Array(k * k);
  for (let a = 0; a < k; a++)
    for (let b = 0; b < k; b++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += x[r * k + a]! * x[r * k + b]!;
      g[a * k + b] = s;
    }
  return g;
}

/** max |M v - lambda v| relative to |M|, and max |V V^T - I|. */
function errors(m: Float64Array, k: number) {
  const { values, vectors } = symmetricEigen(m, k);
  const norm = Math.sqrt(m.reduce((s, x) => s + x * x, 0)) || 1;
  let residual = 0;
  let orthogonality = 0;
  for (let a = 0; a < k; a++) {
    for (let i = 0; i < k; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += m[i * k + j]! * vectors[a * k + j]!;
      residual = Math.max(residual, Math.abs(s - values[a]! * vectors[a * k + i]!) / norm);
    }
    for (let b = 0; b < k; b++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += vectors[a * k + j]! * vectors[b * k + j]!;
      orthogonality = Math.max(orthogonality, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return { values, residual, orthogonality };
}

describe('symmetricEigen', () => {
  it.each([1, 2, 3, 7, 74])('decomposes a random symmetric %i x %i matrix to rounding', (k) => {
    const { values, residual, orthogonality } = errors(randomSymmetric(k, k), k);
    expect(residual).toBeLessThan(1e-12);
    expect(orthogonality).toBeLessThan(1e-12);
    for (let i = 1; i < k; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
  });

  it('keeps its accuracy on a Gram matrix spanning twelve decades, as subspace iteration produces', () => {
    const k = 60;
    const { values, residual, orthogonality } = errors(decayingGram(k, 200, 6, 3), k);
    expect(residual).toBeLessThan(1e-12);
    expect(orthogonality).toBeLessThan(1e-12);
    expect(values[k - 1]! / values[0]!).toBeLessThan(1e-9);
    expect(values[k - 1]!).toBeGreaterThan(0);
  });

  it('finds the one non-zero eigenvalue of a rank-one matrix and zeros for the rest', () => {
    const k = 20;
    const u = Float64Array.from({ length: k }, (_, i) => i + 1);
    const m = new Float64Array(k * k).map((_, idx) => u[Math.floor(idx / k)]! * u[idx % k]!);
    const { values, residual, orthogonality } = errors(m, k);
    expect(values[0]).toBeCloseTo(
      u.reduce((s, x) => s + x * x, 0),
      8,
    );
    for (let i = 1; i < k; i++) expect(Math.abs(values[i]!)).toBeLessThan(1e-9);
    expect(residual).toBeLessThan(1e-12);
    expect(orthogonality).toBeLessThan(1e-12);
  });

  it('returns repeated eigenvalues with orthonormal vectors (a diagonal matrix, an all-zero one)', () => {
    const k = 9;
    const diag = new Float64Array(k * k);
    for (let i = 0; i < k; i++) diag[i * k + i] = i % 3;
    const d = errors(diag, k);
    expect(Array.from(d.values)).toEqual([2, 2, 2, 1, 1, 1, 0, 0, 0]);
    expect(d.orthogonality).toBeLessThan(1e-12);
    const z = errors(new Float64Array(k * k), k);
    expect(Array.from(z.values)).toEqual(new Array(k).fill(0));
    expect(z.orthogonality).toBeLessThan(1e-12);
  });

  it('reads a matrix symmetric only to float32 rounding as its symmetric part', () => {
    const k = 12;
    const m = randomSymmetric(k, 5);
    const skewed = Float64Array.from(m);
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) skewed[i * k + j]! *= 1 + 1e-7;
    const sym = symmetricEigen(m, k).values;
    const got = symmetricEigen(skewed, k).values;
    for (let i = 0; i < k; i++) expect(got[i]!).toBeCloseTo(sym[i]!, 6);
  });

  it('answers NaN eigenvalues at once for a matrix holding NaN or infinity', () => {
    const k = 4;
    const m = randomSymmetric(k, 8);
    m[5] = Number.NaN;
    expect(Array.from(symmetricEigen(m, k).values).every(Number.isNaN)).toBe(true);
    m[5] = Number.POSITIVE_INFINITY;
    expect(Array.from(symmetricEigen(m, k).values).every(Number.isNaN)).toBe(true);
  });
});

describe('cholesky and invertLower', () => {
  it('factor a positive definite matrix and invert the factor', () => {
    const k = 10;
    const m = decayingGram(k, 40, 1, 9);
    const l = cholesky(m, k);
    const inv = invertLower(l, k);
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) {
        let llt = 0;
        let id = 0;
        for (let p = 0; p < k; p++) {
          llt += l[i * k + p]! * l[j * k + p]!;
          id += inv[i * k + p]! * l[p * k + j]!;
        }
        expect(llt).toBeCloseTo(m[i * k + j]!, 9);
        expect(id).toBeCloseTo(i === j ? 1 : 0, 9);
      }
  });
});
