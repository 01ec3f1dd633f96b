import type { ObjectStore } from '../store/index.js';
import {
  buildTextBackbone,
  DEFAULT_TEXT_SPEC,
  DEFAULT_TEXT_VOCABULARY,
  hasTextBackbone,
  readDefaultTextBackboneId,
  type SourceWord,
  saveTextBackbone,
  setDefaultTextBackbone,
  textBackboneId,
  WINK_SOURCE_ID,
  winkVectors,
} from '../text/index.js';

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
 * Makes sure the store holds a default text backbone: the one `backbones/default-text.json` names, or else the
 * built-in one, built from its source on first use (about 10-20 s for the npm package: the first 50,000 of its
 * 341,479 words are read, quantized and measured) and made the default. A source with fewer words than the
 * vocabulary gets an id naming what it has.
 */
export async function ensureTextBackbone(
  store: ObjectStore,
  options: { source?: TextBackboneSource; log?: (line: string) => void } = {},
): Promise<string> {
  const named = await readDefaultTextBackboneId(store);
  if (named && (await hasTextBackbone(store, named))) return named;
  const source = options.source ?? WINK_TEXT_SOURCE;
  const id = builtInTextBackboneId(source);
  if (!(await hasTextBackbone(store, id))) {
    options.log?.(`building the text backbone ${id} from ${source.id} (once per store)...`);
    const { pkg, fidelity } = await buildTextBackbone({
      source: source.words(DEFAULT_TEXT_VOCABULARY),
      sourceId: source.id,
      dim: source.dim,
    });
    await saveTextBackbone(store, pkg);
    options.log?.(
      `text backbone ${pkg.manifest.id}: ${pkg.weights.byteLength} bytes, int8 table cosine vs source mean ${fidelity.cosineMean.toFixed(5)} min ${fidelity.cosineMin.toFixed(5)} over ${fidelity.words} words`,
    );
    await setDefaultTextBackbone(store, pkg.manifest.id);
    return pkg.manifest.id;
  }
  await setDefaultTextBackbone(store, id);
  return id;
}
