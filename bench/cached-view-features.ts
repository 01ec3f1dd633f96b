import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backbone } from '../shared/backbone/index.js';
import { decodeImage, type ImageView } from '../shared/image/index.js';
import { type LabelledFile, readBytes, repoRoot } from './bench-util.js';

/**
 * Features of one view of every file through `backbone`, cached under bench/.cache keyed by backbone id, view
 * and file list: benches that share a key (`prefix`) extract a backbone's features once per machine.
 */
export async function cachedViewFeatures(options: {
  backbone: Backbone;
  files: readonly LabelledFile[];
  view: ImageView;
  prefix: string;
}): Promise<Float32Array> {
  const { backbone, files, view } = options;
  const dim = backbone.featureDim;
  const key = createHash('sha256')
    .update(`${backbone.manifest.id}|${view}|${files.map((f) => f.path).join('\n')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(repoRoot, 'bench', '.cache');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${options.prefix}-${key}.bin`);
  if (existsSync(path)) return new Float32Array(readFileSync(path).buffer.slice(0));
  const out = new Float32Array(files.length * dim);
  for (let i = 0; i < files.length; i += 16) {
    const px = await Promise.all(
      files
        .slice(i, i + 16)
        .map(async (f) => (await decodeImage(readBytes(f.path), { size: backbone.inputSize, view })).data),
    );
    (await backbone.extract(px)).forEach((v, j) => {
      out.set(v, (i + j) * dim);
    });
  }
  writeFileSync(`${path}.tmp`, new Uint8Array(out.buffer));
  renameSync(`${path}.tmp`, path);
  return out;
}

/** The rows `idx` of a row-major `n x dim` matrix, in that order. */
export function pickRows(src: Float32Array, dim: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, j) => {
    out.set(src.subarray(r * dim, (r + 1) * dim), j * dim);
  });
  return out;
}
