import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackboneNotFoundError,
  buildDefaultBackbone,
  DEFAULT_INPUT_SIZE,
  defaultBackboneId,
  readBackboneManifest,
  readDefaultBackboneId,
  saveBackbone,
  setDefaultBackbone,
} from '../backbone/index.js';
import {
  buildFineTuningFor,
  builtInInputSize,
  readSegment,
  saveTrunk,
  trunkIdFor,
} from '../finetune/index.js';
import { decodeImage } from '../image/index.js';
import type { ObjectStore } from '../store/index.js';

function photosUnder(dir: string, limit: number): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (out.length >= limit) return;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(jpe?g|png|webp)$/i.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

async function fidelityPhotos(dir: string, size: number): Promise<Uint8Array[]> {
  return Promise.all(
    photosUnder(dir, 16).map(
      async (f) => (await decodeImage(new Uint8Array(readFileSync(f)), { size })).data,
    ),
  );
}

async function hasBackbone(store: ObjectStore, id: string): Promise<boolean> {
  try {
    await readBackboneManifest(store, id);
    return true;
  } catch (err) {
    if (!(err instanceof BackboneNotFoundError)) throw err;
    return false;
  }
}

/**
 * Makes sure the store holds the code's built-in default backbone (`defaultBackboneId()`) and its fine-tuning
 * trunk, building them from the pinned nsfwjs package when missing (deterministic: the same id and bytes
 * everywhere), without making it the store's default. Fidelity is measured on real photos from `photosDir`.
 */
export async function ensureBuiltInBackbone(
  store: ObjectStore,
  options: { photosDir: string; log?: (line: string) => void },
): Promise<string> {
  const id = defaultBackboneId();
  let photos: Uint8Array[] | undefined;
  if (!(await hasBackbone(store, id))) {
    options.log?.(`building the backbone ${id} from nsfwjs (once per store)...`);
    photos = await fidelityPhotos(options.photosDir, DEFAULT_INPUT_SIZE);
    const { pkg } = await buildDefaultBackbone({ fidelityImages: photos });
    await saveBackbone(store, pkg);
    const f = pkg.manifest.fidelity!;
    options.log?.(
      `backbone ${pkg.manifest.id}: ${pkg.weights.byteLength} bytes, feature cosine vs source mean ${f.cosineMean.toFixed(5)} min ${f.cosineMin.toFixed(5)} on ${f.images} photos`,
    );
  }
  await ensureTrunk(store, id, { ...options, photos });
  return id;
}

async function ensureTrunk(
  store: ObjectStore,
  id: string,
  options: { photosDir: string; log?: (line: string) => void; photos: Uint8Array[] | undefined },
): Promise<void> {
  const trunkId = trunkIdFor(id);
  if (!trunkId || (await readSegment(store, trunkId))) return;
  options.log?.(`building the fine-tuning trunk ${trunkId} (once per store)...`);
  const photos = options.photos ?? (await fidelityPhotos(options.photosDir, builtInInputSize(id)!));
  // A store still on the previous built-in default gets that backbone's own trunk.
  const { trunk, segment } = (await buildFineTuningFor(id, { fidelityImages: photos }))!;
  await saveTrunk(store, trunk.pkg, segment);
}

/**
 * Makes sure the store has a default backbone: the one it names, or else the built-in default, built on first
 * use (see ensureBuiltInBackbone) and made the default. A store that names another default keeps it: moving a
 * store to a new built-in default is `headstart backbone migrate`, which re-extracts the photos first.
 */
export async function ensureDefaultBackbone(
  store: ObjectStore,
  options: { photosDir: string; log?: (line: string) => void },
): Promise<string> {
  const named = await readDefaultBackboneId(store);
  if (named && (await hasBackbone(store, named))) {
    await ensureTrunk(store, named, { ...options, photos: undefined });
    return named;
  }
  const id = await ensureBuiltInBackbone(store, options);
  await setDefaultBackbone(store, id);
  return id;
}
