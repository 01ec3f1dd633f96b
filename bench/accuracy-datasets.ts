/**
 * The datasets of bench/accuracy-bench.ts, built from what is on this machine (never committed), and their backbone
 * features, cached under bench/.cache keyed by backbone id + dataset + view.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import type { Backbone } from '../shared/backbone/index.js';
import { decodeImage, type ImageView } from '../shared/image/index.js';
import { clothingSmallDir } from './bench-util.js';
import { listClothingImages } from './clothing-features.js';

export type DatasetName = 'clothing-small' | 'clothing-32px' | 'digits';

export interface DatasetItem {
  label: string;
  /** 'pool' examples train (folds or seeds pick the held-out part); 'test' is a fixed test split, if any. */
  part: 'pool' | 'test';
  /** Stable name of the photo (path or row), hashed into the trainer's id. */
  name: string;
  /** Encoded image bytes, read lazily. */
  bytes: () => Promise<Uint8Array>;
}

export interface Dataset {
  name: DatasetName;
  licence: string;
  items: DatasetItem[];
}

export const DIGITS_CSV = '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz';

async function clothing(name: DatasetName): Promise<Dataset> {
  const { images } = await listClothingImages(clothingSmallDir);
  const items = images.map((im) => ({
    label: im.label,
    part: im.split === 'test' ? ('test' as const) : ('pool' as const),
    name: im.path,
    bytes: async () => {
      const original = new Uint8Array(await readFile(join(clothingSmallDir, im.path)));
      if (name === 'clothing-small') return original;
      // A 32 x 32 photo through the normal decode path, as a user's small photo would arrive.
      const small = await decodeImage(original, { size: 32 });
      return new Uint8Array(
        await sharp(small.data, { raw: { width: 32, height: 32, channels: 3 } })
          .png()
          .toBuffer(),
      );
    },
  }));
  return {
    name,
    licence:
      'clothing-small (alexeygrigorev/clothing-dataset-small, CC0 1.0 per its upstream); local copy in /work/shared/datasets',
    items,
  };
}

/** scikit-learn's copy of UCI's optical digits: 1,797 rows of 64 grey levels (0-16) and a label. */
async function digits(): Promise<Dataset> {
  const rows = gunzipSync(await readFile(DIGITS_CSV))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(',').map(Number));
  const items = rows.map((row, i) => ({
    label: `digit-${row[64]}`,
    part: 'pool' as const,
    name: `digits-${i}`,
    bytes: async () => {
      // Dark ink on white paper, 8 x 8; decodeImage upscales it to the backbone's input.
      const grey = Uint8Array.from(row.slice(0, 64), (v) => 255 - Math.round((v * 255) / 16));
      return new Uint8Array(
        await sharp(grey, { raw: { width: 8, height: 8, channels: 1 } })
          .png()
          .toBuffer(),
      );
    },
  }));
  return {
    name: 'digits',
    licence:
      "UCI Optical Recognition of Handwritten Digits (CC BY 4.0), scikit-learn's digits.csv.gz (1,797 8x8 images)",
    items,
  };
}

export async function loadDataset(name: DatasetName): Promise<Dataset | undefined> {
  if (name === 'digits') return existsSync(DIGITS_CSV) ? digits() : undefined;
  return existsSync(clothingSmallDir) ? clothing(name) : undefined;
}

export interface DatasetFeatures {
  dim: number;
  /** n * dim, in the order of `dataset.items`. */
  features: Float32Array;
  fromCache: boolean;
}

/** Features of every item of a dataset in one view, extracted once per backbone id and cached. */
export async function datasetFeatures(options: {
  dataset: Dataset;
  backbone: Backbone;
  view: ImageView;
  cacheDir: string;
  log: (line: string) => void;
}): Promise<DatasetFeatures> {
  const { dataset, backbone, view, cacheDir, log } = options;
  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, names: dataset.items.map((it) => it.name) }))
    .digest('hex')
    .slice(0, 12);
  const path = join(cacheDir, `accuracy-${backbone.manifest.id}-${dataset.name}-${view}-${key}.f32`);
  const dim = backbone.featureDim;
  if (existsSync(path)) {
    const buf = await readFile(path);
    const features = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
    if (features.length === dataset.items.length * dim) return { dim, features, fromCache: true };
  }
  const started = performance.now();
  const features = new Float32Array(dataset.items.length * dim);
  const batch = 16;
  for (let start = 0; start < dataset.items.length; start += batch) {
    const slice = dataset.items.slice(start, start + batch);
    const pixels = await Promise.all(
      slice.map(async (it) => (await decodeImage(await it.bytes(), { size: backbone.inputSize, view })).data),
    );
    const out = await backbone.extract(pixels);
    out.forEach((f, j) => {
      features.set(f, (start + j) * dim);
    });
    if ((start / batch) % 25 === 0) {
      log(
        `${dataset.name} ${view}: ${start + slice.length}/${dataset.items.length} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  await mkdir(cacheDir, { recursive: true });
  // Write-then-rename: an interrupted run never leaves a truncated cache a rerun would trust.
  await writeFile(`${path}.tmp`, Buffer.from(features.buffer));
  await rename(`${path}.tmp`, path);
  return { dim, features, fromCache: false };
}
