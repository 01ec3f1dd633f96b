// Latency, bytes and fidelity of mobilenet_v2_mid exports against today's default, measured in the same run
// (bench/mid-backbone-probe.ts latency). Timings are interleaved round by round so load on the machine hits both.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Backbone,
  buildMidBackbone,
  buildMnv2Backbone,
  calibrationPhotosDir,
  loadBackbone,
} from '../shared/backbone/index.js';
import { decodeImage } from '../shared/image/index.js';
import { emit, percentile, readBytes, timeRuns } from './bench-util.js';

async function calibration(size: number): Promise<Uint8Array[]> {
  const root = calibrationPhotosDir();
  const files = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(root, d.name)).map((f) => join(root, d.name, f)));
  return Promise.all(files.map(async (f) => (await decodeImage(readBytes(f), { size })).data));
}

export async function latencyStudy(options: { sizes: number[]; cuts: readonly string[]; rounds?: number }) {
  const rounds = options.rounds ?? 6;
  for (const size of options.sizes) {
    const photos = await calibration(size);
    const img = photos[0]!;
    const contenders: { name: string; backbone: Backbone; samples: number[] }[] = [];
    const base = await buildMnv2Backbone({ fidelityImages: photos, inputSize: size });
    contenders.push({ name: base.pkg.manifest.id, backbone: await loadBackbone(base.pkg), samples: [] });
    for (const cut of options.cuts) {
      const { pkg } = await buildMidBackbone({
        fidelityImages: photos,
        inputSize: size,
        cut,
        pooling: 'grid2',
      });
      const fid = pkg.manifest.fidelity!;
      emit('mid_export_fidelity_cosine_mean', fid.cosineMean, 'cosine', {
        backbone: pkg.manifest.id,
        cosineMin: fid.cosineMin,
        images: fid.images,
        weightsBytes: pkg.weights.byteLength,
        dim: pkg.manifest.feature.dim,
      });
      contenders.push({ name: pkg.manifest.id, backbone: await loadBackbone(pkg), samples: [] });
    }
    for (const c of contenders) await c.backbone.extract([img]);
    for (let r = 0; r < rounds; r++) {
      for (const c of contenders) c.samples.push(...(await timeRuns(5, () => c.backbone.extract([img]))));
    }
    const baseP50 = percentile(contenders[0]!.samples, 50);
    for (const c of contenders) {
      const p50 = percentile(c.samples, 50);
      emit('mid_export_warm_p50_ms', p50, 'ms', {
        backbone: c.name,
        size,
        ratioToDefault: p50 / baseP50,
        backend: 'wasm',
        runs: c.samples.length,
      });
      c.backbone.dispose();
    }
  }
}
