import type { ObjectStore } from '../store/index.js';
import {
  buildBuiltInTextBackbone,
  builtInTextBackboneId,
  hasTextBackbone,
  readDefaultTextBackboneId,
  saveTextBackbone,
  setDefaultTextBackbone,
  type TextBackboneSource,
  WINK_TEXT_SOURCE,
} from '../text/index.js';

/**
 * Makes sure the store holds a default text backbone: the one `backbones/default-text.json` names, or else the
 * built-in one, built from its source on first use (about 3 s for the npm package) and made the default. A source with fewer words than the
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
    const { pkg, fidelity } = await buildBuiltInTextBackbone(source);
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
