import { fnv1a } from './feature-hash.js';
import { type Token, tokenize } from './text-tokenize.js';
import type { WordTable } from './word-table.js';

/**
 * A sentence's feature: a pooled word-vector block (dense, first `denseDim` columns) followed by hashed word and
 * character n-grams (sparse, `buckets` columns). Stored sparsely: a text of 60 characters has about 250 non-zero
 * n-gram buckets out of 16,384, so a dense row would be 64 KB for 1 KB of information.
 */
export interface SparseFeature {
  dim: number;
  /** Column of each non-zero value, ascending. */
  indices: Int32Array;
  values: Float32Array;
}

export interface SentenceFeatureSpec {
  /** 'mean' of the word vectors, 'sif' (mean weighted by a / (a + p(word)), p from the word's rank), or none. */
  pooling: 'mean' | 'sif' | 'none';
  /** Scale of the l2-normalized pooled vector against the n-gram blocks (each of norm 1 before weighting). */
  denseWeight: number;
  /** Hashed n-gram columns (a power of two). */
  buckets: number;
  /** Word n-grams 1..wordNgrams (0: none). */
  wordNgrams: number;
  /** Character n-grams of each word padded with spaces, lengths charMin..charMax (charMax 0: none). */
  charMin: number;
  charMax: number;
  wordWeight: number;
  charWeight: number;
}

const WORD_SEED = 0x2f1a;
const CHAR_SEED = 0x9e37;
const SIF_A = 1e-3;

export interface SentenceFeaturizer {
  readonly spec: SentenceFeatureSpec;
  readonly dim: number;
  readonly denseDim: number;
  featurize(text: string): SparseFeature;
}

class HashedSentenceFeaturizer implements SentenceFeaturizer {
  readonly denseDim: number;
  readonly dim: number;
  private readonly mask: number;
  private readonly zipfNorm: number;

  constructor(
    readonly spec: SentenceFeatureSpec,
    private readonly table: WordTable,
  ) {
    this.denseDim = spec.pooling === 'none' ? 0 : table.dim;
    this.dim = this.denseDim + spec.buckets;
    this.mask = spec.buckets - 1;
    this.zipfNorm = Math.log(table.size + 1);
  }

  featurize(text: string): SparseFeature {
    const tokens = tokenize(text);
    const dense = this.pooled(tokens);
    const grams = new Map<number, number>();
    if (this.spec.wordNgrams > 0) this.addBlock(grams, this.wordGrams(tokens), this.spec.wordWeight);
    if (this.spec.charMax > 0) this.addBlock(grams, this.charGrams(tokens), this.spec.charWeight);
    const cols = [...grams.keys()].sort((a, b) => a - b);
    const nnzDense = dense ? this.denseDim : 0;
    const indices = new Int32Array(nnzDense + cols.length);
    const values = new Float32Array(nnzDense + cols.length);
    for (let d = 0; d < nnzDense; d++) {
      indices[d] = d;
      values[d] = dense![d]!;
    }
    cols.forEach((c, i) => {
      indices[nnzDense + i] = this.denseDim + c;
      values[nnzDense + i] = grams.get(c)!;
    });
    return { dim: this.dim, indices, values };
  }

  private pooled(tokens: readonly Token[]): Float32Array | undefined {
    if (this.denseDim === 0) return undefined;
    const out = new Float32Array(this.denseDim);
    let total = 0;
    for (const t of tokens) {
      for (const row of this.rows(t.text)) {
        const w = this.spec.pooling === 'sif' ? SIF_A / (SIF_A + 1 / ((row + 10) * this.zipfNorm)) : 1;
        this.table.accumulate(row, w, out, 0);
        total += w;
      }
    }
    if (total === 0) return undefined;
    let norm = 0;
    for (let d = 0; d < out.length; d++) norm += out[d]! * out[d]!;
    const s = this.spec.denseWeight / Math.sqrt(norm || 1);
    for (let d = 0; d < out.length; d++) out[d]! *= s;
    return out;
  }

  /** Table rows for a token: itself, or its parts around an apostrophe the way the table was tokenized. */
  private rows(word: string): number[] {
    const row = this.table.lookup(word);
    if (row >= 0) return [row];
    const apostrophe = word.indexOf("'");
    if (apostrophe <= 0) return [];
    const parts = word.endsWith("n't")
      ? [word.slice(0, -3), "n't"]
      : [word.slice(0, apostrophe), word.slice(apostrophe)];
    return parts.map((p) => this.table.lookup(p)).filter((r) => r >= 0);
  }

  private wordGrams(tokens: readonly Token[]): number[] {
    const out: number[] = [];
    const shapes = tokens.map((t) => t.shape);
    for (let n = 1; n <= this.spec.wordNgrams; n++) {
      for (let i = 0; i + n <= shapes.length; i++) {
        out.push(fnv1a(n === 1 ? shapes[i]! : shapes.slice(i, i + n).join(' '), WORD_SEED + n) & this.mask);
      }
    }
    return out;
  }

  private charGrams(tokens: readonly Token[]): number[] {
    const out: number[] = [];
    const { charMin, charMax } = this.spec;
    for (const t of tokens) {
      if (!t.word) continue;
      const padded = ` ${t.shape} `;
      if (padded.length < charMin) continue;
      for (let n = charMin; n <= charMax; n++) {
        if (padded.length < n) {
          if (n === charMin) out.push(fnv1a(padded, CHAR_SEED) & this.mask);
          break;
        }
        for (let i = 0; i + n <= padded.length; i++) out.push(fnv1a(padded, CHAR_SEED, i, i + n) & this.mask);
      }
    }
    return out;
  }

  /** Sublinear counts (1 + ln tf), l2-normalized over the block, scaled by `weight`, added into `grams`. */
  private addBlock(grams: Map<number, number>, buckets: number[], weight: number): void {
    if (buckets.length === 0 || weight === 0) return;
    const counts = new Map<number, number>();
    for (const b of buckets) counts.set(b, (counts.get(b) ?? 0) + 1);
    let norm = 0;
    for (const [b, c] of counts) {
      const v = 1 + Math.log(c);
      counts.set(b, v);
      norm += v * v;
    }
    const s = weight / Math.sqrt(norm);
    for (const [b, v] of counts) grams.set(b, (grams.get(b) ?? 0) + v * s);
  }
}

export function createSentenceFeaturizer(spec: SentenceFeatureSpec, table: WordTable): SentenceFeaturizer {
  if (!Number.isInteger(Math.log2(spec.buckets))) throw new RangeError('buckets must be a power of two');
  return new HashedSentenceFeaturizer(spec, table);
}

/** Feature rows stacked as compressed sparse rows (what `TrainInput.sparse` takes). */
export function stackFeatures(features: readonly SparseFeature[]): {
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
} {
  const indptr = new Int32Array(features.length + 1);
  features.forEach((f, i) => {
    indptr[i + 1] = indptr[i]! + f.indices.length;
  });
  const indices = new Int32Array(indptr[features.length]!);
  const values = new Float32Array(indptr[features.length]!);
  features.forEach((f, i) => {
    indices.set(f.indices, indptr[i]!);
    values.set(f.values, indptr[i]!);
  });
  return { indptr, indices, values };
}

/** The dense row of a sparse feature (what a stored head, a dense layer, takes). */
export function densify(
  feature: SparseFeature,
  target = new Float32Array(feature.dim),
  offset = 0,
): Float32Array {
  for (let p = 0; p < feature.indices.length; p++) target[offset + feature.indices[p]!] = feature.values[p]!;
  return target;
}
