/**
 * Idle-cost benchmark of the local stack: starts `bin.mjs start` as a child process on the file-system store and
 * on an S3-compatible server (moto_server, through a counting proxy), with datasets of several sizes already
 * indexed and trained, waits until the stack is idle, then measures its CPU (% of one core, all threads, from
 * /proc/<pid>/stat) and its requests per minute to the bucket. Prints JSON lines {"metric", "value", "unit"} on
 * stdout; progress goes to stderr.
 *
 *   npm run bench:idle -- [--bin path/to/functions/cli/bin.mjs] [--sizes 100,1000] [--seconds 30]
 *                         [--stores fs,s3] [--endpoint http://127.0.0.1:5055]
 *
 * `--bin` runs another checkout's stack (the figures before a change). Datasets are many copies of the committed
 * fixture photos under different names: features are content-addressed, so the backbone runs once per distinct
 * photo and indexing 1,000 uploads takes seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { calibrationPhotosDir } from '../shared/backbone/index.js';
import { ensureDefaultBackbone } from '../shared/local/ensure-backbone.js';
import { createFsStore, createS3Store, type ObjectStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { type CountingProxy, countingProxy } from '../test/support/counting-proxy.js';
import { emit, repoRoot } from './bench-util.js';

const { values } = parseArgs({
  options: {
    bin: { type: 'string', default: join(repoRoot, 'functions', 'cli', 'bin.mjs') },
    sizes: { type: 'string', default: '100,1000' },
    seconds: { type: 'string', default: '30' },
    stores: { type: 'string', default: 'fs,s3' },
    endpoint: { type: 'string', default: process.env.HEADSTART_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:5055' },
  },
});
const seconds = Number(values.seconds);
const progress = (line: string) => process.stderr.write(`[idle-bench] ${line}\n`);
const PROJECT = 'bench';

function fixturePhotos(): { label: string; bytes: Uint8Array }[] {
  const root = join(repoRoot, 'test', 'fixtures', 'clothing-mini', 'train');
  return ['hat', 'pants', 'shoes'].flatMap((label) =>
    readdirSync(join(root, label))
      .sort()
      .map((f) => ({ label, bytes: new Uint8Array(readFileSync(join(root, label, f))) })),
  );
}

/** n uploads, round-robin over the fixture photos, plus head-only training (the idle cost is what is measured). */
async function seed(store: ObjectStore, n: number): Promise<void> {
  const photos = fixturePhotos();
  await store.put(`projects/${PROJECT}/settings.json`, JSON.stringify({ trainingMode: 'head' }));
  const keys = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < keys.length; i += 32) {
    await Promise.all(
      keys.slice(i, i + 32).map((k) => {
        const p = photos[k % photos.length]!;
        return store.put(`uploads/${PROJECT}/${p.label}/copy-${k}.jpg`, p.bytes, {
          contentType: 'image/jpeg',
        });
      }),
    );
  }
}

async function copyStore(from: ObjectStore, to: ObjectStore): Promise<void> {
  const keys: string[] = [];
  for await (const o of from.list('')) keys.push(o.key);
  for (const key of keys) {
    const o = (await from.get(key))!;
    await to.put(key, o.body, { contentType: o.contentType, metadata: o.metadata });
  }
}

/** CPU time of a process and all its threads, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startStack(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [values.bin!, 'start'], {
    env: { ...process.env, PORT: '0', HEADSTART_RETRAIN_QUIET_SECONDS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, output: () => out };
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Starts the stack, waits for the dataset to be indexed and trained and for the stack to settle, then measures. */
async function measure(
  name: string,
  n: number,
  env: Record<string, string>,
  proxy?: CountingProxy,
): Promise<void> {
  const started = Date.now();
  const { child, output } = startStack(env);
  try {
    await waitFor(
      `${name}: the first training`,
      () => new RegExp(`trained ${PROJECT} |training of ${PROJECT} refused`).test(output()),
      20 * 60_000,
    );
    const indexed = output().match(/indexed uploads\//g)?.length ?? 0;
    progress(
      `${name}: indexed ${indexed} and trained in ${((Date.now() - started) / 1000).toFixed(0)} s; settling`,
    );
    // Long enough for the garbage collections that follow start-up and training to finish.
    await sleep(30_000);
    proxy?.counts.clear();
    const cpu0 = cpuSeconds(child.pid!);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = ((cpuSeconds(child.pid!) - cpu0) / elapsed) * 100;
    emit(`idle_cpu_${name}_${n}`, cpu, '% of one core', { photos: n, seconds: Math.round(elapsed) });
    if (proxy) {
      const total = [...proxy.counts.values()].reduce((a, b) => a + b, 0);
      const byKind = Object.fromEntries(
        [...proxy.counts].map(([k, v]) => [k, Math.round((v / elapsed) * 60)]),
      );
      emit(`idle_requests_${name}_${n}`, (total / elapsed) * 60, 'requests/min', { photos: n, byKind });
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
  }
}

async function main(): Promise<void> {
  const sizes = values.sizes!.split(',').map(Number);
  const stores = values.stores!.split(',');
  progress(`bin ${values.bin}; building the backbone template...`);
  const template = join(mkdtempSync(join(tmpdir(), 'hs-idle-template-')), 'store');
  await initTf();
  await ensureDefaultBackbone(createFsStore({ root: template }), { photosDir: calibrationPhotosDir() });
  for (const n of sizes) {
    if (stores.includes('fs')) {
      const home = mkdtempSync(join(tmpdir(), 'hs-idle-home-'));
      cpSync(template, join(home, 'store'), { recursive: true });
      await seed(createFsStore({ root: join(home, 'store') }), n);
      await measure('fs', n, { HEADSTART_HOME: home });
    }
    if (stores.includes('s3')) {
      const endpoint = values.endpoint!;
      const bucket = `hs-idle-${n}-${Math.random().toString(36).slice(2, 8)}`;
      const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
      const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const store = createS3Store({ bucket, client, endpoint });
      await copyStore(createFsStore({ root: template }), store);
      await seed(store, n);
      const proxy = await countingProxy(endpoint);
      try {
        await measure(
          's3',
          n,
          {
            HEADSTART_HOME: mkdtempSync(join(tmpdir(), 'hs-idle-home-')),
            HEADSTART_BUCKET: bucket,
            S3_ENDPOINT: proxy.endpoint,
            AWS_REGION: 'us-east-1',
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
          },
          proxy,
        );
      } finally {
        await proxy.close();
      }
    }
  }
}

await main();
