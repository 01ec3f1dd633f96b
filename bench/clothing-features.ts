import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadNsfwjsMobileNetV2 } from '../shared/backbone/nsfwjs-source.js';
import { decodeImage } from '../shared/image/decode-image.js';

export type SplitName = 'train' | 'validation' | 'test';

export interface ClothingImage {
  split: SplitName;
  label: string;
  /** Path relative to the dataset root. */
  path: string;
}

export interface ClothingFeatures {
  images: ClothingImage[];
  labelNames: string[];
  /** Per layer: n * dim row-major, globally average-pooled activations. */
  layers: Record<string, { dim: number; features: Float32Array }>;
  /** Images the decoder refused, with its reason; they are left out of `images`. */
  skipped: { path: string; reason: string }[];
  fromCache: boolean;
  extractSeconds: number;
}

const SPLITS: SplitName[] = ['train', 'validation', 'test'];
const SIZE = 224;
const BATCH = 16;

export async function listClothingImages(
  root: string,
): Promise<{ images: ClothingImage[]; bytes: number[] }> {
  const images: ClothingImage[] = [];
  const bytes: number[] = [];
  for (const split of SPLITS) {
    const labels = (await readdir(join(root, split), { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    for (const label of labels) {
      const files = (await readdir(join(root, split, label)))
        .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
        .sort();
      for (const file of files) {
        const path = join(split, label, file);
        images.push({ split, label, path });
        bytes.push((await stat(join(root, path))).size);
      }
    }
  }
  return { images, bytes };
}

interface CacheMeta {
  key: string;
  images: ClothingImage[];
  skipped: { path: string; reason: string }[];
  layers: { name: string; dim: number }[];
  extractSeconds: number;
}

/**
 * Runs the source MobileNetV2 once per batch with several outputs, so every candidate cut costs one forward
 * pass in total. Results are cached under `cacheDir`, keyed by the image list, file sizes and layer names.
 */
export async function clothingFeatures(
  root: string,
  layerNames: string[],
  cacheDir: string,
  log: (msg: string) => void = () => {},
): Promise<ClothingFeatures> {
  const { images: listed, bytes } = await listClothingImages(root);
  const key = createHash('sha256')
    .update(
      JSON.stringify({ v: 1, size: SIZE, layerNames, files: listed.map((im, i) => [im.path, bytes[i]]) }),
    )
    .digest('hex')
    .slice(0, 16);
  const metaPath = join(cacheDir, `clothing-${key}.json`);
  const binPath = join(cacheDir, `clothing-${key}.bin`);
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as CacheMeta;
    const buf = await readFile(binPath);
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const layers: ClothingFeatures['layers'] = {};
    let offset = 0;
    for (const { name, dim } of meta.layers) {
      const len = meta.images.length * dim;
      layers[name] = { dim, features: all.slice(offset, offset + len) };
      offset += len;
    }
    return {
      images: meta.images,
      labelNames: labelNamesOf(meta.images),
      layers,
      skipped: meta.skipped,
      fromCache: true,
      extractSeconds: meta.extractSeconds,
    };
  } catch {
    // No usable cache: extract below.
  }

  const started = performance.now();
  const { model: source } = await loadNsfwjsMobileNetV2();
  const multi = tfl.model({
    inputs: source.inputs,
    outputs: layerNames.map((name) => source.getLayer(name).output as tfl.SymbolicTensor),
  });
  const decodeOne = async (im: ClothingImage) => {
    try {
      return await decodeImage(new Uint8Array(await readFile(join(root, im.path))), { size: SIZE });
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };

  const kept: ClothingImage[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const chunks: Float32Array[][] = layerNames.map(() => []);
  const dims: number[] = layerNames.map(() => 0);
  const decodeBatch = (start: number) => Promise.all(listed.slice(start, start + BATCH).map(decodeOne));
  let pending = decodeBatch(0);
  for (let start = 0; start < listed.length; start += BATCH) {
    const decoded = await pending;
    // Decode the next batch on libuv's threads while this one runs through the model.
    pending = decodeBatch(start + BATCH);
    const ok: { im: ClothingImage; data: Uint8Array }[] = [];
    decoded.forEach((d, j) => {
      const im = listed[start + j]!;
      if (d instanceof Error) skipped.push({ path: im.path, reason: d.message });
      else ok.push({ im, data: d.data });
    });
    if (ok.length === 0) continue;
    const pixels = new Float32Array(ok.length * SIZE * SIZE * 3);
    ok.forEach(({ data }, j) => {
      const base = j * SIZE * SIZE * 3;
      for (let p = 0; p < data.length; p++) pixels[base + p] = data[p]! / 255;
    });
    const pooled = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [ok.length, SIZE, SIZE, 3]);
      const outs = multi.predict(x) as tf.Tensor | tf.Tensor[];
      return (Array.isArray(outs) ? outs : [outs]).map((o) => (o.rank === 4 ? tf.mean(o, [1, 2]) : o));
    });
    pooled.forEach((t, li) => {
      dims[li] = t.shape[1]!;
      chunks[li]!.push(t.dataSync() as Float32Array);
      t.dispose();
    });
    for (const { im } of ok) kept.push(im);
    if ((start / BATCH) % 20 === 0) {
      log(
        `extracted ${start + ok.length}/${listed.length} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  // `multi` shares every layer (and so every weight) with `source`; disposing both would free them twice.
  source.dispose();
  const extractSeconds = (performance.now() - started) / 1000;

  const layers: ClothingFeatures['layers'] = {};
  layerNames.forEach((name, li) => {
    const features = new Float32Array(kept.length * dims[li]!);
    let offset = 0;
    for (const c of chunks[li]!) {
      features.set(c, offset);
      offset += c.length;
    }
    layers[name] = { dim: dims[li]!, features };
  });

  await mkdir(cacheDir, { recursive: true });
  const meta: CacheMeta = {
    key,
    images: kept,
    skipped,
    layers: layerNames.map((name, li) => ({ name, dim: dims[li]! })),
    extractSeconds,
  };
  const parts = layerNames.map((name) => {
    const f = layers[name]!.features;
    return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  });
  // Write-then-rename so an interrupted run never leaves a half-written cache that a rerun would trust.
  await writeFile(`${binPath}.tmp`, Buffer.concat(parts));
  await rename(`${binPath}.tmp`, binPath);
  await writeFile(metaPath, JSON.stringify(meta));
  return { images: kept, labelNames: labelNamesOf(kept), layers, skipped, fromCache: false, extractSeconds };
}

function labelNamesOf(images: ClothingImage[]): string[] {
  return [...new Set(images.map((im) => im.label))].sort();
}
