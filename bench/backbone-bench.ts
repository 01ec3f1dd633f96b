// npm run bench:backbone: speed, size and fidelity of the exported edge backbone. One JSON object per line.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import {
  type Backbone,
  backboneFromLayersModel,
  buildMidBackbone,
  buildMnv2Backbone,
  exportBackbone,
  loadBackbone,
  MID_INPUT_SIZE,
  MNV2_CUT,
  parseBackbone,
  serializeBackbone,
} from '../shared/backbone/index.js';
import { loadNsfwjsMobileNetV2 } from '../shared/backbone/nsfwjs-source.js';
import { decodeImage, probeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { clothingMini } from '../test/support/fixtures.js';
import { trainTinyCnn } from '../test/support/tiny-cnn.js';
import {
  CJS_GLOBALS_BANNER,
  clothingSmallDir,
  emit,
  listSplit,
  percentile,
  readBytes,
  repoRoot,
  timeRuns,
} from './bench-util.js';

const wasmDir = join(repoRoot, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

async function photos(
  size: number,
  n: number,
): Promise<{ pixels: Uint8Array[]; labels: string[]; source: string; sample: string }> {
  let files = listSplit(clothingSmallDir, 'test')
    .filter((_, i) => i % 5 === 0)
    .slice(0, n);
  let source = 'clothing-small/test';
  if (files.length === 0) {
    files = clothingMini('eval').map((f) => ({ label: f.label, path: f.path }));
    source = 'test/fixtures/clothing-mini/eval';
  }
  const pixels = await Promise.all(
    files.map(async (f) => (await decodeImage(readBytes(f.path), { size })).data),
  );
  return { pixels, labels: files.map((f) => f.label), source, sample: files[0]!.path };
}

async function latency(b: Backbone, img: Uint8Array, runs: number): Promise<number[]> {
  await b.extract([img]);
  return timeRuns(runs, () => b.extract([img]));
}

function run(cmd: string, args: string[]): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve({ ms: performance.now() - t, out }) : reject(new Error(`${cmd} exited ${code}`)),
    );
  });
}

/** Child mode: the cpu backend, for the speed-up ratio and for training the float32 CNN. */
async function cpuChild(mode: string, dir: string): Promise<void> {
  await initTf({ backend: 'cpu' });
  if (mode === 'cpu-latency') {
    const { readFile } = await import('node:fs/promises');
    const pkg = parseBackbone(
      await readFile(join(dir, 'backbone.json')),
      await readFile(join(dir, 'weights.bin')),
    );
    const b = await loadBackbone(pkg);
    const img = new Uint8Array(pkg.manifest.inputSize ** 2 * 3).fill(128);
    emit('backbone_cpu_backend_p50_ms', percentile(await latency(b, img, 7), 50), 'ms');
    return;
  }
  // float32 model: a CNN with real float32 weights, trained here on the committed fixture photos.
  const size = 32;
  const train = clothingMini('train');
  const labels = [...new Set(train.map((t) => t.label))];
  const px = await Promise.all(train.map(async (t) => (await decodeImage(t.bytes, { size })).data));
  const model = await trainTinyCnn(
    px,
    train.map((t) => labels.indexOf(t.label)),
    size,
  );
  const evalPx = await Promise.all(
    clothingMini('eval').map(async (f) => (await decodeImage(f.bytes, { size })).data),
  );
  const bytes: Record<string, number> = {};
  let f32Cos = { mean: 0, min: 0 };
  for (const q of ['float32', 'uint8-per-tensor', 'int8-per-channel', 'float16'] as const) {
    const r = await exportBackbone(
      { model, id: 'tiny-cnn', weightsSha256: '0'.repeat(64) },
      {
        id: `tiny-${q}`,
        cut: 'features',
        quantization: q,
        scale: 1 / 255,
        offset: 0,
        fidelityImages: evalPx,
        minCosineMean: 0,
      },
    );
    bytes[q] = r.pkg.weights.byteLength;
    const fid = r.pkg.manifest.fidelity!;
    if (q === 'int8-per-channel') f32Cos = { mean: fid.cosineMean, min: fid.cosineMin };
    if (q === 'uint8-per-tensor') emit('quant_cosine_mean_per_tensor_f32model', fid.cosineMean, 'cosine');
  }
  emit('quant_bytes_ratio_f32model', bytes['int8-per-channel']! / bytes.float32!, 'ratio');
  emit('quant_cosine_mean_f32model', f32Cos.mean, 'cosine');
  emit('quant_cosine_min_f32model', f32Cos.min, 'cosine');
}

/** The 1.4-wide candidate default (nsfwjs' mobilenet_v2_mid, grid2): fidelity, bytes, latency against today's. */
async function midBackbone(current: Backbone, img: Uint8Array): Promise<void> {
  // Photos at the mid backbone's own input size: each backbone is timed on the pixels it takes.
  const real = await photos(MID_INPUT_SIZE, 64);
  const { pkg } = await buildMidBackbone({ fidelityImages: real.pixels, fidelityLabels: real.labels });
  const fid = pkg.manifest.fidelity!;
  emit('mid_quant_cosine_mean', fid.cosineMean, 'cosine', { backbone: pkg.manifest.id, images: fid.images });
  emit('mid_quant_cosine_min', fid.cosineMin, 'cosine');
  emit('mid_quant_head_top1_agreement', fid.headTop1Agreement ?? null, 'ratio');
  emit('mid_backbone_bytes', pkg.weights.byteLength, 'bytes', { dim: pkg.manifest.feature.dim });
  const mid = await loadBackbone(pkg);
  const a: number[] = [];
  const b: number[] = [];
  // Interleaved, so load on the machine falls on both alike.
  for (let r = 0; r < 6; r++) {
    a.push(...(await latency(mid, real.pixels[0]!, 5)));
    b.push(...(await latency(current, img, 5)));
  }
  emit('mid_backbone_warm_p50_ms', percentile(a, 50), 'ms', {
    ratioToDefault: percentile(a, 50) / percentile(b, 50),
    defaultP50: percentile(b, 50),
  });
  mid.dispose();
}

/** This benchmark again in a child process, running one of its `--child` parts. */
function runChild(...args: string[]) {
  return run(process.execPath, [
    '--import',
    'tsx',
    join(repoRoot, 'bench', 'backbone-bench.ts'),
    '--child',
    ...args,
  ]);
}

async function main(): Promise<void> {
  const [, , flag, arg] = process.argv;
  if (flag === '--child') return cpuChild(arg!, process.argv[4] ?? '');

  await initTf();
  const real = await photos(224, 64);
  const { pkg, cosines, float32Bytes } = await buildMnv2Backbone({
    fidelityImages: real.pixels,
    ...(real.labels ? { fidelityLabels: real.labels } : {}),
  });
  const fid = pkg.manifest.fidelity!;
  emit('quant_bytes_ratio', pkg.weights.byteLength / float32Bytes, 'ratio', { backbone: pkg.manifest.id });
  emit('quant_cosine_mean', fid.cosineMean, 'cosine', { images: cosines.length, photos: real.source });
  emit('quant_cosine_min', fid.cosineMin, 'cosine');
  emit('quant_head_top1_agreement', fid.headTop1Agreement ?? null, 'ratio', {
    note: 'softmax head trained on source features of the same photos, top-1 on source vs exported features',
  });
  for (const q of ['float32', 'uint8-per-tensor', 'int8-per-channel', 'float16'] as const) {
    const r =
      q === pkg.manifest.quantization
        ? { pkg }
        : await buildMnv2Backbone({
            fidelityImages: real.pixels.slice(0, 8),
            quantization: q,
            minCosineMean: 0,
          });
    emit(`backbone_bytes_${q.replace(/-/g, '_')}`, r.pkg.weights.byteLength, 'bytes', {
      cosineMean: r.pkg.manifest.fidelity?.cosineMean,
    });
  }

  const exported = await loadBackbone(pkg);
  const img = real.pixels[0]!;
  const warm = await latency(exported, img, 60);
  emit('backbone_warm_p50_ms', percentile(warm, 50), 'ms', { cut: MNV2_CUT, size: 224 });
  emit('backbone_warm_p90_ms', percentile(warm, 90), 'ms');
  const batch = Array.from({ length: 16 }, (_, i) => real.pixels[i % real.pixels.length]!);
  await exported.extract(batch);
  const b16 = await timeRuns(8, () => exported.extract(batch));
  emit('backbone_batch16_per_image_ms', percentile(b16, 50) / 16, 'ms');

  await midBackbone(exported, img);

  const { model } = await loadNsfwjsMobileNetV2();
  const sourceAtCut = backboneFromLayersModel(model, pkg.manifest);
  emit('backbone_source_p50_ms', percentile(await latency(sourceAtCut, img, 30), 50), 'ms', {
    note: `unexported source model, same cut (${MNV2_CUT})`,
  });
  const sourceFull = backboneFromLayersModel(model, {
    ...pkg.manifest,
    feature: { layer: 'flatten_1', pooling: 'none', dim: 1280 },
  });
  emit('backbone_source_flatten_1_p50_ms', percentile(await latency(sourceFull, img, 30), 50), 'ms');

  const small = await photos(160, 16);
  const at160 = await buildMnv2Backbone({ fidelityImages: small.pixels, inputSize: 160 });
  const b160 = await loadBackbone(at160.pkg);
  emit('backbone_warm_p50_ms_160', percentile(await latency(b160, small.pixels[0]!, 60), 50), 'ms', {
    cosineMeanVsFloat: at160.pkg.manifest.fidelity?.cosineMean,
  });
  b160.dispose();

  // The reference size: a 400x533 photo, as most of clothing-small is.
  let samplePath = real.sample;
  for (const f of listSplit(clothingSmallDir, 'test').slice(0, 200)) {
    const p = await probeImage(readBytes(f.path));
    if (p.width === 400 && p.height === 533) {
      samplePath = f.path;
      break;
    }
  }
  const jpeg = readBytes(samplePath);
  const meta = await decodeImage(jpeg, { size: 224 });
  const dec = await timeRuns(200, () => decodeImage(jpeg, { size: 224 }));
  emit('decode_resize_p50_ms', percentile(dec, 50), 'ms', {
    source: `${meta.sourceWidth}x${meta.sourceHeight} JPEG`,
  });

  // Cold start: a fresh process running a bundle, as Lambda would, with the weights read from disk.
  const dir = mkdtempSync(join(tmpdir(), 'headstart-bench-'));
  const { json, weights } = serializeBackbone(pkg);
  writeFileSync(join(dir, 'backbone.json'), json);
  writeFileSync(join(dir, 'weights.bin'), weights);
  // Inside the repo so the bundle resolves sharp (an external, as in the Lambda bundles) from node_modules.
  mkdirSync(join(repoRoot, 'bench', '.cache'), { recursive: true });
  const bundle = join(repoRoot, 'bench', '.cache', 'cold-start.mjs');
  await build({
    entryPoints: [join(repoRoot, 'bench', 'cold-start-entry.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    external: ['sharp'],
    banner: { js: CJS_GLOBALS_BANNER },
    logLevel: 'error',
  });
  const colds: number[] = [];
  for (let i = 0; i < 5; i++)
    colds.push((await run(process.execPath, [bundle, dir, samplePath, wasmDir])).ms);
  emit('cold_start_ms', percentile(colds, 50), 'ms', { runs: colds.length });

  const cpu = await runChild('cpu-latency', dir);
  process.stdout.write(cpu.out);
  const cpuP50 = JSON.parse(cpu.out.trim().split('\n').pop()!).value as number;
  emit('backbone_cpu_speedup', cpuP50 / percentile(warm, 50), 'ratio', {
    note: 'cpu backend p50 over wasm p50',
  });

  const f32 = await runChild('f32model');
  process.stdout.write(f32.out);
  emit('peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB');
}

await main();
