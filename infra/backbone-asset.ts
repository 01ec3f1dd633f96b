import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BACKBONE_JSON,
  BACKBONE_WEIGHTS,
  buildDefaultBackbone,
  defaultBackboneId,
  parseBackbone,
  serializeBackbone,
} from '../shared/backbone/index.js';
import { NSFWJS_VERSION } from '../shared/backbone/nsfwjs-source.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { REPO_ROOT } from './bundling.js';
import { InfraError } from './infra-errors.js';

/** The deployable default backbone: two files for `backbones/<id>/`, plus the id for `backbones/default.json`. */
export interface BackboneAsset {
  id: string;
  /** Directory holding exactly `backbone.json` and `weights.bin`. */
  dir: string;
  jsonFile: string;
  weightsFile: string;
  weightsBytes: number;
  /** True when the files came from the cache rather than a fresh build. */
  cached: boolean;
}

export interface BackboneAssetOptions {
  /** Cache root; the asset lives in `<cacheRoot>/<nsfwjs version>-<id>/`. */
  cacheRoot: string;
  /** Photos (RGB at 224 px after decoding) that the export's fidelity check compares source and export on. */
  fidelityPhotos?: () => Uint8Array[];
}

/** A few of the committed clothing-mini eval photos: enough for the export's fidelity check. */
function fixturePhotos(): Uint8Array[] {
  const root = join(REPO_ROOT, 'test', 'fixtures', 'clothing-mini', 'eval');
  const out: Uint8Array[] = [];
  for (const label of readdirSync(root).sort()) {
    const files = readdirSync(join(root, label))
      .filter((f) => f.endsWith('.jpg'))
      .sort();
    for (const f of files.slice(0, 2)) out.push(new Uint8Array(readFileSync(join(root, label, f))));
  }
  return out;
}

function readCached(dir: string, id: string): BackboneAsset | undefined {
  const jsonFile = join(dir, BACKBONE_JSON);
  const weightsFile = join(dir, BACKBONE_WEIGHTS);
  if (!existsSync(jsonFile) || !existsSync(weightsFile)) return undefined;
  try {
    // Parsing checks the weights against the manifest's sha256, so a torn or stale cache is rebuilt.
    const pkg = parseBackbone(readFileSync(jsonFile), new Uint8Array(readFileSync(weightsFile)));
    if (pkg.manifest.id !== id) return undefined;
    return { id, dir, jsonFile, weightsFile, weightsBytes: pkg.weights.byteLength, cached: true };
  } catch {
    return undefined;
  }
}

/**
 * Builds the default backbone at synth time (deterministic: the same nsfwjs version and options give the same
 * bytes), so nothing downloads weights at run time. Cached by id; a second synth reuses the files.
 */
export async function buildBackboneAsset(options: BackboneAssetOptions): Promise<BackboneAsset> {
  const id = defaultBackboneId();
  const dir = join(options.cacheRoot, `${NSFWJS_VERSION}-${id}`);
  const hit = readCached(dir, id);
  if (hit) return hit;

  await initTf();
  const photos = (options.fidelityPhotos ?? fixturePhotos)();
  const decoded = await Promise.all(photos.map(async (p) => (await decodeImage(p, { size: 224 })).data));
  let out: { json: string | Uint8Array; weights: Uint8Array };
  try {
    const { pkg } = await buildDefaultBackbone({ fidelityImages: decoded });
    if (pkg.manifest.id !== id) {
      throw new InfraError('backbone_id_mismatch', `built backbone '${pkg.manifest.id}', expected '${id}'`);
    }
    out = serializeBackbone(pkg);
  } catch (cause) {
    if (cause instanceof InfraError) throw cause;
    throw new InfraError('backbone_build_failed', `building the default backbone failed: ${String(cause)}`, {
      cause,
    });
  }
  // Written beside and renamed into place, so a concurrent synth never reads half a file.
  const staging = `${dir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, BACKBONE_WEIGHTS), out.weights);
  writeFileSync(join(staging, BACKBONE_JSON), out.json);
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  const built = readCached(dir, id);
  if (!built)
    throw new InfraError('backbone_build_failed', `the backbone written to ${dir} does not read back`);
  return { ...built, cached: false };
}
