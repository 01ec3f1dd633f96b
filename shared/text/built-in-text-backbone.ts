import {
  buildTextBackbone,
  DEFAULT_TEXT_SPEC,
  DEFAULT_TEXT_VOCABULARY,
  textBackboneId,
} from './text-backbone.js';
import { WINK_SOURCE_ID, winkVectors } from './wink-package.js';
import type { SourceWord } from './word-vector-source.js';

/** Where the built-in text backbone's word vectors come from. */
export interface TextBackboneSource {
  id: string;
  /** Words in rank order; the build keeps the first `DEFAULT_TEXT_VOCABULARY`. */
  words: (maxRank: number) => AsyncIterable<SourceWord>;
  dim: number;
}

/** The pinned npm package, read from node_modules: nothing is downloaded. */
export const WINK_TEXT_SOURCE: TextBackboneSource = { id: WINK_SOURCE_ID, words: winkVectors, dim: 100 };

/** The id the built-in text backbone gets from a source (the same everywhere for the same package and recipe). */
export function builtInTextBackboneId(source: TextBackboneSource = WINK_TEXT_SOURCE): string {
  return textBackboneId(source.id, DEFAULT_TEXT_VOCABULARY, DEFAULT_TEXT_SPEC);
}

/**
 * Builds the built-in text backbone from its source (about 3 s for the npm package: the first 50,000 of its
 * 341,479 words are read, quantized and measured). Deterministic, so the local stack and `cdk synth` publish
 * the same id and bytes.
 */
export function buildBuiltInTextBackbone(source: TextBackboneSource = WINK_TEXT_SOURCE) {
  return buildTextBackbone({
    source: source.words(DEFAULT_TEXT_VOCABULARY),
    sourceId: source.id,
    dim: source.dim,
  });
}
