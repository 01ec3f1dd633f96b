import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackboneNotFoundError,
  buildDefaultBackbone,
  defaultBackboneId,
  readBackboneManifest,
  readDefaultBackboneId,
  saveBackbone,
  setDefaultBackbone,
} from '../backbone/index.js';
import { buildDefaultFineTuning, readSegment, saveTrunk, trunkIdFor } from '../finetune/index.js';
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

async function fidelityPhotos(dir: string): Promise<Uint8Array[]> {
  return Promise.all(
    photosUnder(dir, 16).map(
      async (f) => (await decodeImage(new Uint8Array(readFileSync(f)), { size: 224 })).data,
    ),
  );
}

/**
 * Makes sure the store has a default backbone, building it from the pinned nsfwjs package on first use
 * (deterministic: the same id and bytes everywhere), and, for the built-in default, its fine-tuning trunk.
 * Fidelity is measured on real photos from `photosDir`.
 */
export async function ensureDefaultBackbone(
  store: ObjectStore,
  options: { photosDir: string; log?: (line: string) => void },
): Promise<string> {
  let id = await readDefaultBackboneId(store);
  if (id) {
    try {
      await readBackboneManifest(store, id);
    } catch (err) {
      if (!(err instanceof BackboneNotFoundError)) throw err;
      id = undefined;
    }
  }
  let photos: Uint8Array[] | undefined;
  if (!id) {
    options.log?.(`building the default backbone ${defaultBackboneId()} from nsfwjs (first start only)...`);
    photos = await fidelityPhotos(options.photosDir);
    const { pkg } = await buildDefaultBackbone({ fidelityImages: photos });
    await saveBackbone(store, pkg);
    await setDefaultBackbone(store, pkg.manifest.id);
    const f = pkg.manifest.fidelity!;
    options.log?.(
      `backbone ${pkg.manifest.id}: ${pkg.weights.byteLength} bytes, feature cosine vs source mean ${f.cosineMean.toFixed(5)} min ${f.cosineMin.toFixed(5)} on ${f.images} photos`,
    );
    id = pkg.manifest.id;
  }
  const trunkId = trunkIdFor(id);
  if (trunkId && !(await readSegment(store, trunkId))) {
    options.log?.(`building the fine-tuning trunk ${trunkId} (first start only)...`);
    photos ??= await fidelityPhotos(options.photosDir);
    const { trunk, segment } = await buildDefaultFineTuning({ fidelityImages: photos });
    await saveTrunk(store, trunk.pkg, segment);
  }
  return id;
}
