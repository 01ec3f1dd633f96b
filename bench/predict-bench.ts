// npm run bench:predict (tsx bench/predict-bench.ts [--sequential N]): the edge app over real HTTP, as the
// bundled local Node entry in its own process. One JSON object per line.
//
// The server is pinned to CPU 0 and this process to CPU 1 (when taskset exists), so "one core" means what a
// 1-vCPU Lambda gets. The bare-backbone p50 that the overhead ratio divides by is measured here, in this run,
// on the same image, in blocks interleaved with the HTTP requests.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import sharp from 'sharp';
import { createKey } from '../shared/auth/index.js';
import { buildDefaultBackbone, DEFAULT_INPUT_SIZE, loadBackbone } from '../shared/backbone/index.js';
import { localStoreRoot } from '../shared/http/index.js';
import { decodeImage } from '../shared/image/index.js';
import { createFsStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { trainHead } from '../shared/train/index.js';
import { clothingMini } from '../test/support/fixtures.js';
import { installBackbone, publishTestModel } from '../test/support/publish-test-model.js';
import {
  CJS_GLOBALS_BANNER,
  clothingSmallDir,
  emit,
  listSplit,
  percentile,
  readBytes,
  repoRoot,
} from './bench-util.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SEQUENTIAL = flag('--sequential', 10_000);
const LATENCY_RUNS = flag('--latency-runs', 1000);
const COLD_RUNS = flag('--cold-runs', 5);
const PROJECT = 'bench';
const wasmDir = join(repoRoot, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A 400x533 JPEG: from clothing-small/test when present, else a fixture photo scaled to that size. */
async function benchImage(): Promise<{ bytes: Uint8Array; source: string }> {
  for (const f of listSplit(clothingSmallDir, 'test')) {
    const bytes = readBytes(f.path);
    const m = await sharp(bytes).metadata();
    if (m.width === 400 && m.height === 533)
      return { bytes, source: f.path.slice(clothingSmallDir.length + 1) };
  }
  const fixture = clothingMini('eval')[0]!;
  const bytes = await sharp(fixture.bytes).resize(400, 533, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  return { bytes: new Uint8Array(bytes), source: 'fixture scaled to 400x533' };
}

/** Training photos: clothing-small/train (15 per label) when present, else the committed fixture. */
function trainingPhotos(): { label: string; bytes: Uint8Array }[] {
  const small = listSplit(clothingSmallDir, 'train', 15);
  if (small.length > 0) return small.map((f) => ({ label: f.label, bytes: readBytes(f.path) }));
  return clothingMini('train');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

interface Server {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

async function startServer(bundle: string, home: string, cpu: string | undefined): Promise<Server> {
  const port = await freePort();
  const env = {
    ...process.env,
    HEADSTART_HOME: home,
    HEADSTART_BUCKET: '',
    HEADSTART_WASM_DIR: wasmDir,
    HEADSTART_REQUIRE_KEYS: 'true',
    PORT: String(port),
    HOST: '127.0.0.1',
  };
  const [cmd, argv] =
    cpu && hasTaskset ? ['taskset', ['-c', cpu, process.execPath, bundle]] : [process.execPath, [bundle]];
  const child = spawn(cmd, argv as string[], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0) console.error(`server exited ${code} ${signal ?? ''}\n${stderr.slice(-2000)}`);
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  await initTf();
  const image = await benchImage();

  // A fresh store: the default backbone, and a head trained on real photos, published as the current version.
  const home = mkdtempSync(join(tmpdir(), 'headstart-predict-bench-'));
  const store = createFsStore({ root: localStoreRoot(home) });
  const photos = trainingPhotos();
  const fidelity = await Promise.all(
    photos
      .filter((_, i) => i % 10 === 0)
      .map(async (p) => (await decodeImage(p.bytes, { size: DEFAULT_INPUT_SIZE })).data),
  );
  const { pkg } = await buildDefaultBackbone({ fidelityImages: fidelity });
  await installBackbone(store, pkg);
  const backbone = await loadBackbone(pkg);
  const labelNames = [...new Set(photos.map((p) => p.label))];
  const pixels = await Promise.all(
    photos.map(async (p) => (await decodeImage(p.bytes, { size: backbone.inputSize })).data),
  );
  const rows = await backbone.extract(pixels);
  const features = new Float32Array(rows.length * backbone.featureDim);
  for (const [i, r] of rows.entries()) features.set(r, i * backbone.featureDim);
  const result = await trainHead(
    {
      features,
      dim: backbone.featureDim,
      labels: photos.map((p) => labelNames.indexOf(p.label)),
      labelNames,
      ids: photos.map((p) => createHash('sha256').update(p.bytes).digest('hex')),
    },
    { softmaxL2: [1e-3], mlpL2: [1e-3] },
  );
  await publishTestModel(store, PROJECT, { result, backbone: pkg.manifest }, { version: 'v1' });
  const { key } = await createKey(store, PROJECT);

  // The bare backbone on the bench image, in this process. Sampled again between blocks of HTTP requests below,
  // so both p50s see the same machine (other load drifts over minutes).
  const decoded = (await decodeImage(image.bytes, { size: backbone.inputSize })).data;
  for (let i = 0; i < 20; i++) await backbone.extract([decoded]);
  const bare: number[] = [];
  const sampleBare = async (runs: number) => {
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await backbone.extract([decoded]);
      bare.push(performance.now() - t);
    }
  };
  const decodeRuns: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t = performance.now();
    await decodeImage(image.bytes, { size: backbone.inputSize });
    decodeRuns.push(performance.now() - t);
  }
  emit('predict_bare_decode_p50_ms', percentile(decodeRuns, 50), 'ms', { image: image.source });

  // The local Node entry, bundled as a deployment would be.
  const bundleDir = mkdtempSync(join(tmpdir(), 'headstart-predict-bundle-'));
  const bundle = join(bundleDir, 'local-server.mjs');
  // sharp stays external (native code), as in a deployment package: give the bundle a node_modules to find it.
  symlinkSync(join(repoRoot, 'node_modules'), join(bundleDir, 'node_modules'), 'dir');
  await build({
    entryPoints: [join(repoRoot, 'functions', 'edge', 'local-server.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    external: ['sharp'],
    // CommonJS dependencies (tfjs-backend-wasm's loader) expect require and __dirname, which ESM lacks.
    banner: { js: CJS_GLOBALS_BANNER },
    logLevel: 'error',
  });

  const predictInit = (): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${key}` },
    body: image.bytes,
  });
  const predict = async (url: string) => {
    const res = await fetch(`${url}/v1/projects/${PROJECT}/predict`, predictInit());
    await res.arrayBuffer();
    return res.status;
  };

  // Cold start: process spawn to the first 200 of a prediction (backbone and head loaded on the way).
  const colds: number[] = [];
  for (let run = 0; run < COLD_RUNS; run++) {
    const started = performance.now();
    const server = await startServer(bundle, home, '0');
    for (;;) {
      const status = await predict(server.url).catch(() => 0);
      if (status === 200) break;
      if (server.child.exitCode !== null) throw new Error('server died during cold start');
      if (status !== 0) throw new Error(`cold start answered ${status}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    colds.push(performance.now() - started);
    await server.stop();
  }
  emit('predict_cold_start_ms', percentile(colds, 50), 'ms', {
    runs: colds.length,
    min: Math.round(Math.min(...colds)),
    max: Math.round(Math.max(...colds)),
    note: 'bundled local entry, FS store; spawn to first 200',
  });

  // Warm: one server, sequential requests over a keep-alive connection.
  const server = await startServer(bundle, home, '0');
  try {
    while ((await predict(server.url).catch(() => 0)) !== 200) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 50; i++) await predict(server.url);
    const lat: number[] = [];
    const inApp: Record<'decode' | 'backbone' | 'head' | 'total', number[]> = {
      decode: [],
      backbone: [],
      head: [],
      total: [],
    };
    const blocks = 10;
    for (let i = 0; i < LATENCY_RUNS; i++) {
      if (i % Math.ceil(LATENCY_RUNS / blocks) === 0) await sampleBare(20);
      const t = performance.now();
      const res = await fetch(`${server.url}/v1/projects/${PROJECT}/predict`, predictInit());
      const body = (await res.json()) as { timingsMs: Record<keyof typeof inApp, number> };
      lat.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`warm request answered ${res.status}`);
      for (const k of Object.keys(inApp) as (keyof typeof inApp)[]) inApp[k].push(body.timingsMs[k]);
    }
    const bareP50 = percentile(bare, 50);
    emit('predict_bare_backbone_p50_ms', bareP50, 'ms', {
      runs: bare.length,
      note: 'backbone.extract on the decoded bench image in the bench process, interleaved with the HTTP runs',
    });
    const p50 = percentile(lat, 50);
    emit('predict_http_p50_ms', p50, 'ms', { runs: LATENCY_RUNS, image: image.source });
    emit('predict_http_p99_ms', percentile(lat, 99), 'ms');
    emit('predict_overhead_ratio', p50 / bareP50, 'ratio', {
      note: 'HTTP p50 (decode + backbone + head + HTTP) over bare backbone p50, same run',
    });
    // Where the time goes inside the server (timingsMs of the same requests): the rest of the HTTP p50 is
    // transport, the client, and waiting for the server's CPU.
    emit('predict_app_p50_ms', percentile(inApp.total, 50), 'ms', {
      decode: percentile(inApp.decode, 50),
      backbone: percentile(inApp.backbone, 50),
      head: percentile(inApp.head, 50),
    });

    // Throughput on the server's one core: a few requests in flight so decode and inference overlap.
    const seconds = 10;
    const deadline = performance.now() + seconds * 1000;
    let done = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (performance.now() < deadline) {
          if ((await predict(server.url)) === 200) done++;
          else failed++;
        }
      }),
    );
    emit('predict_rps_one_core', done / seconds, 'req/s', { concurrency: 4, failed, pinned: hasTaskset });

    const burstStart = performance.now();
    const burst = await Promise.all(Array.from({ length: 50 }, () => predict(server.url).catch(() => 0)));
    emit('predict_burst50_errors', burst.filter((s) => s !== 200).length, 'count', {
      ms: Math.round(performance.now() - burstStart),
    });

    const rssBefore = procStatusKb(server.child.pid!, 'VmRSS');
    let errors = 0;
    const t10k = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) if ((await predict(server.url).catch(() => 0)) !== 200) errors++;
    const rssAfter = procStatusKb(server.child.pid!, 'VmRSS');
    emit(`predict_sequential_errors`, errors, 'count', {
      requests: SEQUENTIAL,
      seconds: Math.round((performance.now() - t10k) / 1000),
    });
    emit('predict_sequential_rss_growth_mb', (rssAfter - rssBefore) / 1024, 'MB', {
      requests: SEQUENTIAL,
      rssBeforeMb: Math.round(rssBefore / 1024),
      rssAfterMb: Math.round(rssAfter / 1024),
    });
    emit('predict_peak_rss_mb', procStatusKb(server.child.pid!, 'VmHWM') / 1024, 'MB', {
      note: 'server process VmHWM',
    });
  } finally {
    await server.stop();
    backbone.dispose();
  }
}

if (!existsSync('/proc/self/status'))
  throw new Error('predict-bench reads /proc for the server RSS (Linux only)');
await main();
