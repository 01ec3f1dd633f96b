import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BACKBONE_JSON,
  BACKBONE_WEIGHTS,
  buildDefaultBackbone,
  calibrationPhotosDir,
  DEFAULT_INPUT_SIZE,
  defaultBackboneId,
  parseBackbone,
  serializeBackbone,
} from '../shared/backbone/index.js';
import { NSFWJS_VERSION } from '../shared/backbone/nsfwjs-source.js';
import {
  buildDefaultFineTuning,
  parseSegment,
  SEGMENT_JSON,
  SEGMENT_WEIGHTS,
  serializeSegment,
  trunkBackboneId,
} from '../shared/finetune/index.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { InfraError } from './infra-errors.js';

/** One file the deployment copies into the bucket. */
export interface AssetFile {
  key: string;
  path: string;
  contentType: string;
}

/** The fine-tuning trunk of the default backbone, with the pretrained blocks fine-tuning starts from. */
export interface TrunkAsset {
  id: string;
  dir: string;
  weightsBytes: number;
  cached: boolean;
}

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
  trunk: TrunkAsset;
  /**
   * Every file to put in the bucket, in a safe order: each package's weights before the manifest that makes it
   * exist, the trunk (and its segment) before the default backbone, whose uploads would otherwise reach a
   * precompute function that cannot yet cache trunk activations.
   */
  files: AssetFile[];
}

export interface BackboneAssetOptions {
  /** Cache root; the asset lives in `<cacheRoot>/<nsfwjs version>-<id>/`. */
  cacheRoot: string;
  /** Photos (decoded at the default backbone's input size) that the export's fidelity check compares source and export on. */
  fidelityPhotos?: () => Uint8Array[];
}

/** The first two calibration photos of each label: enough for the export's fidelity check. */
function calibrationPhotos(): Uint8Array[] {
  const root = calibrationPhotosDir();
  const out: Uint8Array[] = [];
  const labels = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory());
  for (const label of labels.map((e) => e.name).sort()) {
    const files = readdirSync(join(root, label))
      .filter((f) => f.endsWith('.jpg'))
      .sort();
    for (const f of files.slice(0, 2)) out.push(new Uint8Array(readFileSync(join(root, label, f))));
  }
  return out;
}

type PackageAsset = Omit<BackboneAsset, 'trunk' | 'files'>;

function readCached(dir: string, id: string): PackageAsset | undefined {
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

/** Writes files beside `dir` and renames the directory into place, so a concurrent synth never reads half a file. */
export function writeDir(dir: string, files: Record<string, string | Uint8Array>): void {
  const staging = `${dir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const [name, body] of Object.entries(files)) writeFileSync(join(staging, name), body);
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
}

async function failing<T>(what: string, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (cause) {
    if (cause instanceof InfraError) throw cause;
    throw new InfraError('backbone_build_failed', `building ${what} failed: ${String(cause)}`, { cause });
  }
}

function readCachedTrunk(dir: string, id: string): TrunkAsset | undefined {
  const pkg = readCached(dir, id);
  if (!pkg) return undefined;
  try {
    parseSegment(
      readFileSync(join(dir, SEGMENT_JSON)),
      new Uint8Array(readFileSync(join(dir, SEGMENT_WEIGHTS))),
      id,
    );
    return { id, dir, weightsBytes: pkg.weightsBytes, cached: true };
  } catch {
    return undefined;
  }
}

/**
 * Builds the default backbone and its fine-tuning trunk at synth time (deterministic: the same nsfwjs version and
 * options give the same bytes), so nothing downloads weights at run time. Cached by id; a second synth reuses the
 * files.
 */
export async function buildBackboneAsset(options: BackboneAssetOptions): Promise<BackboneAsset> {
  const id = defaultBackboneId();
  const trunkId = trunkBackboneId();
  const dir = join(options.cacheRoot, `${NSFWJS_VERSION}-${id}`);
  const trunkDir = join(options.cacheRoot, `${NSFWJS_VERSION}-${trunkId}`);
  let base = readCached(dir, id);
  let trunk = readCachedTrunk(trunkDir, trunkId);
  if (!base || !trunk) {
    await initTf();
    const photos = (options.fidelityPhotos ?? calibrationPhotos)();
    const decoded = await Promise.all(
      photos.map(async (p) => (await decodeImage(p, { size: DEFAULT_INPUT_SIZE })).data),
    );
    if (!base) {
      const out = await failing('the default backbone', async () => {
        const { pkg } = await buildDefaultBackbone({ fidelityImages: decoded });
        if (pkg.manifest.id !== id) {
          throw new InfraError(
            'backbone_id_mismatch',
            `built backbone '${pkg.manifest.id}', expected '${id}'`,
          );
        }
        return serializeBackbone(pkg);
      });
      writeDir(dir, { [BACKBONE_WEIGHTS]: out.weights, [BACKBONE_JSON]: out.json });
      const built = readCached(dir, id);
      if (!built) {
        throw new InfraError('backbone_build_failed', `the backbone written to ${dir} does not read back`);
      }
      base = { ...built, cached: false };
    }
    if (!trunk) {
      const files = await failing('the fine-tuning trunk', async () => {
        const { trunk: built, segment } = await buildDefaultFineTuning({ fidelityImages: decoded });
        const out = serializeBackbone(built.pkg);
        const seg = serializeSegment(segment, trunkId);
        return {
          [BACKBONE_WEIGHTS]: out.weights,
          [BACKBONE_JSON]: out.json,
          [SEGMENT_WEIGHTS]: seg.weights,
          [SEGMENT_JSON]: seg.json,
        };
      });
      writeDir(trunkDir, files);
      const built = readCachedTrunk(trunkDir, trunkId);
      if (!built) {
        throw new InfraError('backbone_build_failed', `the trunk written to ${trunkDir} does not read back`);
      }
      trunk = { ...built, cached: false };
    }
  }
  const file = (pkgId: string, from: string, name: string): AssetFile => ({
    key: `backbones/${pkgId}/${name}`,
    path: join(from, name),
    contentType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
  });
  return {
    ...base,
    trunk,
    files: [
      file(trunkId, trunkDir, SEGMENT_WEIGHTS),
      file(trunkId, trunkDir, SEGMENT_JSON),
      file(trunkId, trunkDir, BACKBONE_WEIGHTS),
      file(trunkId, trunkDir, BACKBONE_JSON),
      file(id, dir, BACKBONE_WEIGHTS),
      file(id, dir, BACKBONE_JSON),
    ],
  };
}
