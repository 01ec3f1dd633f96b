import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bindApiPort, startApiServer } from '../../functions/cli/local-api.js';
import { calibrationPhotosDir } from '../../shared/backbone/index.js';
import { layout } from '../../shared/layout/index.js';
import { ensureDefaultBackbone } from '../../shared/local/ensure-backbone.js';
import { ensureTextBackbone } from '../../shared/local/ensure-text-backbone.js';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../shared/local/local-stack.js';
import { localTrainerOwner } from '../../shared/local/training-leases.js';
import type { UploadOutcome } from '../../shared/pipeline/extract-uploads.js';
import type { TrainOutcome } from '../../shared/pipeline/train-project.js';
import { createFsStore, type ObjectStore, openStore, type StoreSpec } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { countingProxy } from '../support/counting-proxy.js';
import { clothingMini, fixturesDir } from '../support/fixtures.js';
import { motoBucket, motoS3Client } from '../support/moto.js';

// Issue 12, the local stack's runtime: one stack per home, leases of live holders kept, training off the API's
// event loop, Ctrl-C that stops, idle passes that cost nothing, one bad object never stopping a pass, temp files
// of dead writers cleaned, and refusals (port, bucket) before any side effect. Driven through the real stack
// (in-process and as `bin.mjs start`) on the file-system store and on moto_server.

const bin = join(fixturesDir, '..', '..', 'functions', 'cli', 'bin.mjs');
const photos = clothingMini('train');
const endpoint = inject('motoEndpoint');
const children: ChildProcess[] = [];
const stacks: LocalStack[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
let template: string; // an FS store root with the default backbone, its trunk and the text backbone already built

beforeAll(async () => {
  template = join(mkdtempSync(join(tmpdir(), 'hs-hostile-template-')), 'store');
  await initTf();
  const store = createFsStore({ root: template });
  await ensureDefaultBackbone(store, { photosDir: calibrationPhotosDir() });
  await ensureTextBackbone(store);
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of stacks) await s.stop().catch(() => {});
  for (const f of cleanups) await f();
});

/** A fresh home whose store already has the backbone (so a start does not rebuild it). */
function homeWithBackbone(): string {
  const home = mkdtempSync(join(tmpdir(), 'hs-hostile-home-'));
  cpSync(template, join(home, 'store'), { recursive: true });
  return home;
}

async function copyTemplateTo(store: ObjectStore): Promise<void> {
  const from = createFsStore({ root: template });
  for await (const o of from.list('')) {
    const obj = (await from.get(o.key))!;
    await store.put(o.key, obj.body, { contentType: obj.contentType, metadata: obj.metadata });
  }
}

interface Backend {
  name: string;
  /** A store spec with the backbone in place, plus a store over it for the test's own reads and writes. */
  make(): Promise<{ spec: StoreSpec; store: ObjectStore; home: string }>;
}

const fsBackend: Backend = {
  name: 'file-system store',
  async make() {
    const home = homeWithBackbone();
    const spec: StoreSpec = { kind: 'fs', root: join(home, 'store') };
    return { spec, store: openStore(spec), home };
  },
};

const s3Backend: Backend = {
  name: 'S3 via moto_server',
  async make() {
    const { bucket } = await motoBucket(endpoint, 'hs-hostile');
    const spec: StoreSpec = { kind: 's3', bucket, region: 'us-east-1', endpoint };
    const store = openStore(spec);
    await copyTemplateTo(store);
    return { spec, store, home: mkdtempSync(join(tmpdir(), 'hs-hostile-home-')) };
  },
};

process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

const backends: Backend[] = [fsBackend];
if (endpoint) backends.push(s3Backend);
else console.warn(`[local stack runtime] S3 variants skipped: ${inject('motoSkipReason')}`);

async function putPhotos(
  store: ObjectStore,
  project: string,
  options: { labels?: string[]; perLabel?: number } = {},
): Promise<void> {
  const labels = options.labels ?? ['hat', 'pants', 'shoes'];
  const chosen = photos.filter((p) => labels.includes(p.label));
  const per = new Map<string, number>();
  for (const p of chosen) {
    const n = per.get(p.label) ?? 0;
    if (n >= (options.perLabel ?? 8)) continue;
    per.set(p.label, n + 1);
    await store.put(`uploads/${project}/${p.label}/${n}.jpg`, p.bytes, { contentType: 'image/jpeg' });
  }
}

interface Started {
  stack: LocalStack;
  logs: string[];
  trainings: TrainOutcome[];
  uploads: UploadOutcome[];
}

async function start(spec: StoreSpec, extra: Partial<LocalStackOptions> = {}): Promise<Started> {
  const logs: string[] = [];
  const trainings: TrainOutcome[] = [];
  const uploads: UploadOutcome[] = [];
  const stack = await startLocalStack({
    store: spec,
    photosDir: calibrationPhotosDir(),
    quietSeconds: 0,
    log: (l) => logs.push(l),
    onTraining: (o) => trainings.push(o),
    onUpload: (o) => uploads.push(o),
    serveApi: async (deps) =>
      startApiServer({
        ...deps,
        listener: await bindApiPort({ port: 0, host: '127.0.0.1' }),
        requireKeys: false,
        log: () => {},
      }),
    ...extra,
  });
  stacks.push(stack);
  return { stack, logs, trainings, uploads };
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const readJson = async (store: ObjectStore, key: string) => {
  const o = await store.get(key);
  return o ? (JSON.parse(new TextDecoder().decode(o.body)) as Record<string, unknown>) : undefined;
};

/** A pid that surely runs no more: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

function cli(args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, PORT: '0', HEADSTART_RETRAIN_QUIET_SECONDS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return Object.assign(child, { output: () => out });
}

const exited = (c: ChildProcess) =>
  new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on('exit', (code) => r(code))));

describe('one stack per home, and leases of live trainers are kept (item 4)', () => {
  it('refuses a second `start` on a home a live stack holds, in one line, and releases the home on Ctrl-C', async () => {
    const home = homeWithBackbone();
    const first = cli(['start'], { HEADSTART_HOME: home });
    await until('the first stack to listen', () => /API: http/.test(first.output()));
    const second = cli(['start'], { HEADSTART_HOME: home });
    expect(await exited(second)).toBe(1);
    const lines = second
      .output()
      .trim()
      .split('\n')
      .filter((l) => !/NodeVersionSupportWarning|^\s*$/.test(l));
    expect(lines.at(-1)).toMatch(
      /^headstart: another Headstart is running on .* \(pid \d+, started .*API http/,
    );
    expect(second.output()).not.toMatch(/building|store:/);
    expect(JSON.parse(readFileSync(join(home, 'stack.json'), 'utf8')).pid).toBe(first.pid);
    first.kill('SIGINT');
    expect(await exited(first)).toBe(0);
    expect(existsSync(join(home, 'stack.json'))).toBe(false);
  }, 180_000);

  for (const backend of backends) {
    it(`removes at start only the leases of dead local trainers, never a live holder's (${backend.name})`, async () => {
      const { spec, store } = await backend.make();
      const lease = (owner: string) =>
        JSON.stringify({ owner, expiresAt: new Date(Date.now() + 900_000).toISOString() });
      // A live stack's trainer (this process is alive), a killed one's, and a cloud trainer's.
      await store.put(layout.trainingLease('alive'), lease(localTrainerOwner()));
      await store.put(layout.trainingLease('dead'), lease(localTrainerOwner(await deadPid())));
      await store.put(layout.trainingLease('cloud'), lease('trainer-123-abc'));
      await start(spec);
      // A second stack on the same store (another home sharing the bucket) must not touch the live lease either.
      await start(spec);
      expect(await store.head(layout.trainingLease('alive'))).toBeDefined();
      expect(await store.head(layout.trainingLease('cloud'))).toBeDefined();
      expect(await store.head(layout.trainingLease('dead'))).toBeUndefined();
    }, 180_000);
  }
});

describe('training runs off the API thread (item 5)', () => {
  for (const backend of backends) {
    it(`answers predictions while a training runs, and stop() abandons it, keeping the previous version (${backend.name})`, async () => {
      const { spec, store } = await backend.make();
      const gate = join(mkdtempSync(join(tmpdir(), 'hs-gate-')), 'open');
      writeFileSync(gate, '');
      const { stack, trainings } = await start(spec, { trainingGate: gate });
      await putPhotos(store, 'closet', { labels: ['hat', 'pants'] });
      await stack.tick();
      expect(trainings.map((t) => t.status)).toEqual(['promoted']);
      const v1 = (await readJson(store, layout.currentPointer('closet')))?.version;

      // Close the gate: the next training blocks its thread before the flip, as a long fine-tuning step does.
      rmSync(gate);
      await putPhotos(store, 'closet', { labels: ['shoes'] });
      void stack.tick().catch(() => {});
      await until(
        'the training to start',
        async () => (await store.head(layout.trainingLease('closet'))) !== undefined,
      );
      const res = await fetch(`${stack.url}/v1/projects/closet/predict`, {
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        body: photos.find((p) => p.label === 'hat')!.bytes,
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { model: { version: string } }).model.version).toBe(v1);
      expect(await fetch(`${stack.url}/healthz`).then((r) => r.status)).toBe(200);
      // The prediction completed while the training was still running.
      expect(trainings).toHaveLength(1);
      expect(await store.head(layout.trainingLease('closet'))).toBeDefined();

      await stack.stop(); // returns although the training never ends
      expect(trainings).toHaveLength(1);
      expect((await readJson(store, layout.currentPointer('closet')))?.version).toBe(v1);
      expect(await store.head(layout.trainingLease('closet'))).toBeUndefined();
      expect((await readJson(store, layout.trainingState('closet')))?.state).toBe('idle');
    }, 240_000);
  }
});

describe('an idle stack costs nothing that grows with the data (item 7)', () => {
  if (endpoint) {
    it('makes no GET, HEAD or PUT on idle passes against a bucket, only one LIST of uploads/ and one of training/', async () => {
      const made = await s3Backend.make();
      // A proxy of its own: stacks of earlier tests in this file still run, and their passes must not be counted.
      const own = await countingProxy(endpoint);
      cleanups.push(() => own.close());
      const spec: StoreSpec = { ...made.spec, endpoint: own.endpoint } as StoreSpec;
      const store = made.store;
      const { stack, trainings } = await start(spec, {
        scanIntervalMs: 3_600_000,
        trainingScanIntervalMs: 3_600_000,
      });
      await putPhotos(store, 'closet', { labels: ['hat', 'pants'], perLabel: 10 });
      await stack.tick();
      await stack.tick();
      expect(trainings.map((t) => t.status)).toEqual(['promoted']);
      own.counts.clear();
      await stack.tick();
      await stack.tick();
      expect(Object.fromEntries(own.counts)).toEqual({ LIST: 4 });
    }, 180_000);
  }

  it('opens no index shard on idle passes over the file-system store', async () => {
    const { spec, store } = await fsBackend.make();
    const { stack, trainings, logs } = await start(spec);
    await putPhotos(store, 'closet', { labels: ['hat', 'pants'] });
    await stack.tick();
    await stack.tick();
    expect(trainings.map((t) => t.status)).toEqual(['promoted']);
    // Damage every shard on disk: a pass that read the index would now fail.
    for await (const o of store.list(layout.datasetShardPrefix('closet'))) {
      writeFileSync(join(spec.kind === 'fs' ? spec.root : '', 'objects', o.key), 'not a store object');
    }
    await stack.tick();
    await stack.tick();
    expect(logs.filter((l) => /failed|could not/.test(l))).toEqual([]);
  }, 180_000);
});

describe('one bad object never stops a pass (item 3)', () => {
  for (const backend of backends) {
    it(`trains a project while another's uploads fail, logging each failed key once, not every pass (${backend.name})`, async () => {
      const { spec, store } = await backend.make();
      // Failed uploads wait an hour before their retry, so the passes below are all "too early" for them.
      const { stack, trainings, logs } = await start(spec, { retryDelayMs: 3_600_000 });
      // Project settings another tool broke: every upload of 'broken' fails to extract.
      await store.put(layout.projectSettings('broken'), '{ not json');
      await putPhotos(store, 'broken', { labels: ['hat', 'pants'], perLabel: 5 });
      await putPhotos(store, 'closet', { labels: ['hat', 'pants'] });
      await stack.tick();
      await stack.tick();
      expect(trainings.filter((t) => t.project === 'closet').map((t) => t.status)).toEqual(['promoted']);
      const failures = logs.filter((l) => l.startsWith('could not process "uploads/broken/hat/0.jpg"'));
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/retrying in \d+ s/);
      await stack.tick();
      expect(logs.filter((l) => l.startsWith('could not process "uploads/broken/hat/0.jpg"'))).toHaveLength(
        1,
      );
    }, 180_000);
  }

  /** Puts an object under a key the store's own API refuses, as another tool would. */
  async function putUnnameable(spec: StoreSpec, store: ObjectStore, key: string): Promise<void> {
    if (spec.kind === 's3') {
      await motoS3Client(endpoint).send(
        new PutObjectCommand({ Bucket: spec.bucket, Key: key, Body: photos[0]!.bytes }),
      );
      return;
    }
    // On the file-system store: a valid object file copied to a name with a control character.
    await store.put('uploads/p/hat/template.jpg', photos[0]!.bytes);
    const objects = join(spec.root, 'objects');
    cpSync(join(objects, 'uploads/p/hat/template.jpg'), join(objects, ...key.split('/')));
    await store.delete('uploads/p/hat/template.jpg');
  }

  for (const backend of backends) {
    it(`sets aside a key with a control character once and keeps indexing and training other projects (${backend.name})`, async () => {
      const { spec, store } = await backend.make();
      const { stack, trainings, uploads } = await start(spec);
      const bad = 'uploads/p/hat/tab\tname.jpg';
      await putUnnameable(spec, store, bad);
      await putPhotos(store, 'closet', { labels: ['hat', 'pants'] });
      await stack.tick();
      await stack.tick();
      expect(trainings.filter((t) => t.project === 'closet').map((t) => t.status)).toEqual(['promoted']);
      const setAside = uploads.filter((u) => u.key === bad);
      expect(setAside.map((u) => [u.status, 'code' in u ? u.code : undefined])).toEqual([
        ['quarantined', 'invalid_file_name'],
      ]);
    }, 180_000);
  }
});

describe('temp files of dead writers are cleaned when the store opens (item 12)', () => {
  it("removes a dead writer's temps and old leftovers, never a live writer's", async () => {
    const root = mkdtempSync(join(tmpdir(), 'hs-temps-'));
    const writer = createFsStore({ root });
    await writer.put('a', 'x'); // opens the store: creates tmp/
    const tmp = join(root, 'tmp');
    const tag = (await import('node:crypto'))
      .createHash('sha256')
      .update(hostname())
      .digest('hex')
      .slice(0, 8);
    const dead = join(tmp, `${tag}-${await deadPid()}-0123abcd.tmp`);
    const live = join(tmp, `${tag}-${process.pid}-0123abcd.tmp`);
    const legacyOld = join(tmp, '00112233445566778899aabb.tmp');
    const legacyNew = join(tmp, 'ffeeddccbbaa998877665544.tmp');
    for (const f of [dead, live, legacyOld, legacyNew]) writeFileSync(f, 'half an upload');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(legacyOld, twoHoursAgo, twoHoursAgo);
    await createFsStore({ root }).get('a'); // a new process opening the store
    expect([dead, live, legacyOld, legacyNew].map((f) => existsSync(f))).toEqual([false, true, false, true]);
  });
});

describe('refusals come before any side effect (small ones)', () => {
  it('prints one line and exits non-zero when the port is in use, touching nothing', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as { port: number }).port;
    const home = join(mkdtempSync(join(tmpdir(), 'hs-port-')), 'home');
    const child = cli(['start'], { HEADSTART_HOME: home, PORT: String(port) });
    expect(await exited(child)).toBe(1);
    const lines = child
      .output()
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('headstart:') || l.startsWith('['));
    expect(lines).toEqual([
      `headstart: port ${port} on 127.0.0.1 is in use (another Headstart or another program); set PORT=<free port> (PORT=0 picks one)`,
    ]);
    expect(child.output().length).toBeLessThan(2_000);
    expect(existsSync(join(home, 'store'))).toBe(false);
    expect(existsSync(join(home, 'stack.json'))).toBe(false);
  }, 60_000);

  if (endpoint) {
    it('says how to create a missing bucket before building anything', async () => {
      const home = mkdtempSync(join(tmpdir(), 'hs-nobucket-'));
      const child = cli(['start'], {
        HEADSTART_HOME: home,
        HEADSTART_BUCKET: 'hs-no-such-bucket',
        S3_ENDPOINT: endpoint,
        AWS_REGION: 'us-east-1',
      });
      expect(await exited(child)).toBe(1);
      expect(child.output()).toContain(
        `headstart: bucket hs-no-such-bucket does not exist on ${endpoint}; create it with: aws s3 mb s3://hs-no-such-bucket --endpoint-url ${endpoint}`,
      );
      expect(child.output()).not.toMatch(/building/);
      expect(existsSync(join(home, 'stack.json'))).toBe(false);
    }, 60_000);
  }
});
