/**
 * The word-vector table: words in frequency order (row = rank), each vector stored as int8 with one scale per
 * row. Per-row scales keep rare words, whose vectors are short, as precise as frequent ones; a per-table scale
 * would crush them.
 */
export interface WordTable {
  readonly dim: number;
  readonly size: number;
  /** Row of a word, -1 when it is not in the table. */
  lookup(word: string): number;
  /** Adds `weight` times row `row` (dequantized) into `target` at `offset`. */
  accumulate(row: number, weight: number, target: Float32Array, offset: number): void;
  /** Row `row` dequantized. */
  vector(row: number): Float32Array;
  readonly words: readonly string[];
  readonly codes: Int8Array;
  readonly scales: Float32Array;
}

class Int8WordTable implements WordTable {
  private readonly index = new Map<string, number>();

  constructor(
    readonly words: readonly string[],
    readonly dim: number,
    readonly codes: Int8Array,
    readonly scales: Float32Array,
  ) {
    words.forEach((w, i) => {
      if (!this.index.has(w)) this.index.set(w, i);
    });
  }

  get size(): number {
    return this.words.length;
  }

  lookup(word: string): number {
    return this.index.get(word) ?? -1;
  }

  accumulate(row: number, weight: number, target: Float32Array, offset: number): void {
    const s = this.scales[row]! * weight;
    const base = row * this.dim;
    for (let d = 0; d < this.dim; d++) target[offset + d]! += this.codes[base + d]! * s;
  }

  vector(row: number): Float32Array {
    const out = new Float32Array(this.dim);
    this.accumulate(row, 1, out, 0);
    return out;
  }
}

export function createWordTable(spec: {
  words: readonly string[];
  dim: number;
  codes: Int8Array;
  scales: Float32Array;
}): WordTable {
  return new Int8WordTable(spec.words, spec.dim, spec.codes, spec.scales);
}

/** Symmetric per-row int8: scale = max |v| / 127, code = round(v / scale). */
export function quantizeRows(vectors: Float32Array, dim: number): { codes: Int8Array; scales: Float32Array } {
  const rows = vectors.length / dim;
  const codes = new Int8Array(vectors.length);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let d = 0; d < dim; d++) max = Math.max(max, Math.abs(vectors[r * dim + d]!));
    const scale = max > 0 ? max / 127 : 1;
    scales[r] = scale;
    for (let d = 0; d < dim; d++) codes[r * dim + d] = Math.round(vectors[r * dim + d]! / scale);
  }
  return { codes, scales };
}

/** Cosine between the float vectors and their int8 copies, over every row: what quantizing the table cost. */
export interface TableFidelity {
  words: number;
  cosineMean: number;
  cosineMin: number;
}

/** Collects a source's words into an int8 table and measures the quantization against the float vectors. */
export async function buildWordTable(
  source: AsyncIterable<{ word: string; vector: Float32Array }>,
  dim: number,
): Promise<{ table: WordTable; fidelity: TableFidelity }> {
  const words: string[] = [];
  const parts: Float32Array[] = [];
  for await (const entry of source) {
    if (entry.vector.length !== dim)
      throw new RangeError(`'${entry.word}' has ${entry.vector.length} values`);
    words.push(entry.word);
    parts.push(entry.vector);
  }
  const vectors = new Float32Array(words.length * dim);
  parts.forEach((v, i) => {
    vectors.set(v, i * dim);
  });
  const { codes, scales } = quantizeRows(vectors, dim);
  const table = createWordTable({ words, dim, codes, scales });
  let sum = 0;
  let min = 1;
  for (let r = 0; r < words.length; r++) {
    const c = cosine(vectors.subarray(r * dim, (r + 1) * dim), table.vector(r));
    sum += c;
    min = Math.min(min, c);
  }
  return {
    table,
    fidelity: { words: words.length, cosineMean: words.length ? sum / words.length : 1, cosineMin: min },
  };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb || 1);
}
