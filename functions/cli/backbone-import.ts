import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import {
  calibrationPhotosDir,
  exportBackbone,
  saveBackbone,
  sha256Hex,
} from '../../shared/backbone/index.js';
import { exactArrayBuffer } from '../../shared/bytes.js';
import { decodeImage } from '../../shared/image/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { CliError } from './cli-errors.js';

const modelJsonSchema = z.object({
  modelTopology: z.record(z.unknown()),
  weightsManifest: z.array(z.object({ paths: z.array(z.string()), weights: z.array(z.record(z.unknown())) })),
});

/**
 * `backbone import`: a tfjs layers model (model.json and its weight shards) exported to Headstart's edge
 * format, cut at `cut`, per-channel int8, with fidelity measured on real photos (the first 16 under `photosDir`
 * in path order, by default the code's own calibration photos); refused below the threshold.
 */
export async function importBackbone(
  store: ObjectStore,
  options: { modelJson: string; id: string; cut: string; photosDir?: string; scale: number; offset: number },
): Promise<{ id: string; cosineMean: number; bytes: number }> {
  await initTf();
  let parsed: z.infer<typeof modelJsonSchema>;
  try {
    parsed = modelJsonSchema.parse(JSON.parse(readFileSync(options.modelJson, 'utf8')));
  } catch (cause) {
    throw new CliError(`${options.modelJson} is not a tfjs layers model.json: ${(cause as Error).message}`, {
      cause,
    });
  }
  const dir = dirname(options.modelJson);
  const shards = parsed.weightsManifest.flatMap((g) =>
    g.paths.map((p) => new Uint8Array(readFileSync(join(dir, p)))),
  );
  const weights = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
  let at = 0;
  for (const s of shards) {
    weights.set(s, at);
    at += s.byteLength;
  }
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: parsed.modelTopology,
      weightSpecs: parsed.weightsManifest.flatMap(
        (g) => g.weights,
      ) as unknown as tf.io.WeightsManifestEntry[],
      weightData: exactArrayBuffer(weights),
    }),
  );
  const size = (model.inputs[0]?.shape[1] as number | null) ?? 224;
  const photosDir = options.photosDir ?? calibrationPhotosDir();
  const files = readdirSync(photosDir, { recursive: true })
    .map((f) => join(photosDir, String(f)))
    .filter((f) => /\.(jpe?g|png|webp)$/i.test(f) && statSync(f).isFile())
    .sort()
    .slice(0, 16);
  if (files.length === 0) throw new CliError(`${photosDir} has no photos to measure fidelity on`);
  const photos = await Promise.all(
    files.map(async (f) => (await decodeImage(new Uint8Array(readFileSync(f)), { size })).data),
  );
  const { pkg } = await exportBackbone(
    { model, id: options.modelJson, weightsSha256: sha256Hex(weights) },
    {
      id: options.id,
      cut: options.cut,
      scale: options.scale,
      offset: options.offset,
      fidelityImages: photos,
    },
  );
  await saveBackbone(store, pkg);
  model.dispose();
  return {
    id: pkg.manifest.id,
    cosineMean: pkg.manifest.fidelity!.cosineMean,
    bytes: pkg.weights.byteLength,
  };
}
