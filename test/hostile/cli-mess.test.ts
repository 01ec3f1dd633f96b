import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { acquireStackLock } from '../../shared/local/stack-lock.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { type EdgeFixture, edgeFixture, testApp } from '../support/edge-test-support.js';
import { clothingMini, fixturesDir } from '../support/fixtures.js';
import { motoBucket } from '../support/moto.js';
import { installBackbone, publishTestModel } from '../support/publish-test-model.js';

// The `headstart` CLI run as a process, as a user would, against the ordinary mess of real folders: a 30 MB
// photo, a sub-folder inside a label, a broken link, a label ending with a space, a wrong --home, a stack that
// is not running, one bad file among good ones.
const bin = join(fixturesDir, '..', '..', 'functions', 'cli', 'bin.mjs');
const MB = 1024 * 1024;
const endpoint = inject('motoEndpoint');
const children: ChildProcess[] = [];
const closers: (() => void)[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const close of closers) close();
});

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The environment a user's shell would give: none of the test run's Headstart settings, moto credentials. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('HEADSTART_') || k === 'S3_ENDPOINT' || k.startsWith('AWS_SDK_JS_')) delete env[k];
  }
  return {
    ...env,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    ...extra,
  };
}

const scratch = () => mkdtempSync(join(tmpdir(), 'headstart-cli-mess-'));

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: childEnv(env), cwd: scratch(), timeout: 120_000, maxBuffer: 16 * MB },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);

/** A home as `npm start` leaves it: a file-system store under <home>/store. */
function newHome(): { home: string; store: ObjectStore } {
  const home = scratch();
  mkdirSync(join(home, 'store'));
  return { home, store: createFsStore({ root: join(home, 'store') }) };
}

/** A file of `bytes` bytes that starts like `head` and is zeros after it, sparse on disk (never committed). */
function bigFile(path: string, head: Uint8Array, bytes: number): void {
  writeFileSync(path, head);
  truncateSync(path, bytes);
}

const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const train = clothingMini('train');
const photo = (label: string, i: number) => train.filter((t) => t.label === label)[i]!.bytes;

/**
 * Three photos each of hat and shoes, plus: hat/huge.png (30 MB), hat/nested/deep.jpg, hat/gone.jpg (a link to
 * nothing) and `boots /b.jpg` (a label ending with a space).
 */
function messyFolder(): string {
  const dir = scratch();
  for (const label of ['hat', 'shoes']) {
    mkdirSync(join(dir, label));
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, label, `${label}-${i}.jpg`), photo(label, i));
  }
  bigFile(join(dir, 'hat', 'huge.png'), PNG_SIGNATURE, 30 * MB);
  mkdirSync(join(dir, 'hat', 'nested'));
  writeFileSync(join(dir, 'hat', 'nested', 'deep.jpg'), photo('hat', 4));
  symlinkSync(join(dir, 'nowhere.jpg'), join(dir, 'hat', 'gone.jpg'));
  mkdirSync(join(dir, 'boots '));
  writeFileSync(join(dir, 'boots ', 'b.jpg'), photo('shoes', 5));
  return dir;
}

interface Where {
  args: string[];
  env: Record<string, string>;
  store: ObjectStore;
  /** What the CLI calls the store in messages. */
  name: string;
}

function uploadScenario(label: string, makeWhere: () => Promise<Where>) {
  describe(`upload of a messy folder (${label})`, () => {
    it('refuses the 30 MB file, the nested file, the broken link and the trailing-space label by name, and uploads the rest', async () => {
      const where = await makeWhere();
      const dir = messyFolder();
      const r = await cli(['upload', dir, '--project', 'closet', '--json', ...where.args], where.env);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toBe('');
      const s = JSON.parse(r.out) as {
        uploaded: string[];
        refused: { file: string; code: string; message: string }[];
      };
      expect(s.uploaded).toHaveLength(6);
      const refused = Object.fromEntries(s.refused.map((x) => [x.file.slice(dir.length + 1), x]));
      expect(Object.keys(refused).sort()).toEqual([
        'boots /b.jpg',
        'hat/gone.jpg',
        'hat/huge.png',
        'hat/nested/deep.jpg',
      ]);
      expect(refused['hat/huge.png']).toMatchObject({ code: 'upload_too_large' });
      expect(refused['hat/huge.png']!.message).toMatch(
        /^file is 30\.0 MB \(31457280 bytes\), over the 20\.0 MB/,
      );
      expect(refused['hat/nested/deep.jpg']).toMatchObject({ code: 'key_too_deep' });
      expect(refused['hat/nested/deep.jpg']!.message).toMatch(/sub-folder 'nested' of label 'hat'/);
      expect(refused['hat/gone.jpg']).toMatchObject({ code: 'unreadable_file' });
      expect(refused['hat/gone.jpg']!.message).toMatch(/^broken symbolic link/);
      expect(refused['boots /b.jpg']).toMatchObject({ code: 'invalid_label' });
      expect(refused['boots /b.jpg']!.message).toMatch(/ends with a space/);
      expect(await where.store.head('uploads/closet/hat/huge.png')).toBeUndefined();
      const keys: string[] = [];
      for await (const o of where.store.list('uploads/')) keys.push(o.key);
      expect(keys).toHaveLength(6);
    }, 120_000);

    it('prints each refusal on one line with its code once, and says who picks the photos up', async () => {
      const where = await makeWhere();
      const dir = messyFolder();
      const r = await cli(['upload', dir, '--project', 'closet', ...where.args], where.env);
      expect(r.code).toBe(0);
      // Nothing else on stderr: no AWS SDK warning, no doubled `ENOENT: ENOENT:`.
      expect(r.err).toBe('');
      const out = lines(r.out);
      expect(out[0]).toBe('uploaded 6, already there 0, refused 4');
      expect(out).toContain(
        `  refused ${join(dir, 'hat', 'gone.jpg')}: unreadable_file: broken symbolic link (its target ${join(dir, 'nowhere.jpg')} does not exist)`,
      );
      expect(out.filter((l) => /: (\w+): \1:/.test(l))).toEqual([]);
      expect(out.at(-1)).toMatch(where.name);
    }, 120_000);
  });
}

uploadScenario('file-system store, no stack running', async () => {
  const { home, store } = newHome();
  return {
    args: ['--home', home],
    env: {},
    store,
    name: `no Headstart is running on ${home}: run \`HEADSTART_HOME=${home} npm start\` to extract features and train`,
  };
});

if (endpoint) {
  uploadScenario('S3 via moto_server', async () => {
    const { bucket, store } = await motoBucket(endpoint, 'hs-cli-mess');
    return {
      args: ['--bucket', bucket, '--endpoint', endpoint],
      env: {},
      store,
      name: `the photos are in s3://${bucket} (${endpoint}): the deployed stack's notifications, or \`HEADSTART_BUCKET=${bucket} S3_ENDPOINT=${endpoint} npm start\`, extract features`,
    };
  });
} else {
  console.warn(`[cli mess] S3 variants skipped: ${inject('motoSkipReason')}`);
}

describe('upload with a stack running', () => {
  it('names the running stack that will pick the photos up', async () => {
    const { home } = newHome();
    const lock = acquireStackLock({ home, store: join(home, 'store') });
    try {
      lock.update({ url: 'http://127.0.0.1:8787' });
      mkdirSync(join(home, 'photos', 'hat'), { recursive: true });
      writeFileSync(join(home, 'photos', 'hat', 'a.jpg'), photo('hat', 0));
      const r = await cli(['upload', join(home, 'photos'), '--project', 'closet', '--home', home]);
      expect(r.code, r.err).toBe(0);
      expect(lines(r.out).at(-1)).toBe(
        `the running Headstart (pid ${process.pid}, API http://127.0.0.1:8787) extracts features and retrains after a quiet period; \`headstart train --wait\` trains now`,
      );
    } finally {
      lock.release();
    }
  }, 60_000);
});

describe('a home, a project and a stack that are not what the user thinks', () => {
  it('refuses a --home with no store, saying how to make one, and creates nothing', async () => {
    const home = join(scratch(), 'typo');
    for (const args of [
      ['status', '--project', 'closet'],
      ['keys', 'create', '--project', 'closet'],
      ['backbone', 'list'],
    ]) {
      const r = await cli([...args, '--home', home]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.err)).toEqual([
        `headstart: ${home} has no Headstart store (no ${join(home, 'store')}): \`HEADSTART_HOME=${home} npm start\` creates one there, or pass the --home (or HEADSTART_HOME) of an existing one`,
      ]);
      expect(existsSync(home)).toBe(false);
    }
  }, 60_000);

  it('refuses an invalid --project with a usage error (exit 2) on every command', async () => {
    const { home } = newHome();
    for (const args of [
      ['status', '--project', 'NoSuch'],
      ['keys', 'create', '--project', 'Bad_Name'],
      ['models', '--project', 'Bad_Name'],
    ]) {
      const r = await cli([...args, '--home', home]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.err)).toHaveLength(1);
      expect(r.err).toMatch(/^headstart: project name '(NoSuch|Bad_Name)' is not allowed: use 1-63 of a-z/);
    }
  }, 60_000);

  it('fails `train --wait` at once when no stack runs on the home, and requests nothing', async () => {
    const { home, store } = newHome();
    const r = await cli(['train', '--project', 'closet', '--wait', '--home', home]);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([
      `headstart: no Headstart is running on ${home}, so nothing would train: start it with \`HEADSTART_HOME=${home} npm start\`, then run this again`,
    ]);
    expect(await store.head('training/closet/request.json')).toBeUndefined();
  }, 60_000);

  it.skipIf(!endpoint)(
    'says what `train --wait` waits for against a bucket without a training queue, at once',
    async () => {
      const { bucket } = await motoBucket(endpoint, 'hs-cli-mess');
      const child = spawn(
        process.execPath,
        [bin, 'train', '--project', 'closet', '--wait', '--bucket', bucket, '--endpoint', endpoint],
        { env: childEnv(), cwd: scratch(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      const err = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stderr!.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('\n')) resolve(text);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code} before saying anything: ${text}`)));
      });
      child.kill('SIGKILL');
      expect(lines(err)[0]).toBe(
        `headstart: waiting for a Headstart on s3://${bucket} (${endpoint}) to train (\`HEADSTART_BUCKET=${bucket} S3_ENDPOINT=${endpoint} npm start\`); without a training queue (--outputs or --queue-url of a deployed stack) nothing here can tell whether one runs`,
      );
    },
    60_000,
  );
});

describe('backbone list', () => {
  it('marks the default backbone in text and in --json', async () => {
    const fx = await edgeFixture();
    const { home, store } = newHome();
    await installBackbone(store, fx.pkg);
    const text = await cli(['backbone', 'list', '--home', home]);
    expect(text.code, text.err).toBe(0);
    expect(lines(text.out)[0]).toMatch(new RegExp(`^\\* ${fx.pkg.manifest.id.replace(/\./g, '\\.')} `));
    const json = JSON.parse((await cli(['backbone', 'list', '--json', '--home', home])).out);
    expect(json).toEqual([expect.objectContaining({ id: fx.pkg.manifest.id, default: true })]);
  }, 120_000);
});

/** Serves `createApp` over HTTP, as the local stack does; closed after the file. */
function serveApp(fx: EdgeFixture, store: ObjectStore, maxBodyBytes?: number): Promise<string> {
  const { app } = testApp(fx, store, maxBodyBytes ? { maxBodyBytes } : {});
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
    closers.push(() => {
      server.close();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    });
  });
}

describe('predict and eval with bad files among good ones', () => {
  let api: string;
  /** An API refusing bodies over 64 KB, as a tight edge would: a batch of 16 photos is over it, one is not. */
  let tightApi: string;
  const evalSet = clothingMini('eval');

  beforeAll(async () => {
    const fx = await edgeFixture();
    const { store } = newHome();
    await installBackbone(store, fx.pkg);
    await publishTestModel(store, 'closet', fx.trained, { version: 'v1' });
    api = await serveApp(fx, store);
    tightApi = await serveApp(fx, store, 64 * 1024);
  }, 180_000);

  function photosDir(labels: string[]): string {
    const dir = scratch();
    for (const p of evalSet.filter((e) => labels.includes(e.label))) {
      mkdirSync(join(dir, p.label), { recursive: true });
      writeFileSync(join(dir, p.label, p.path.split('/').pop()!), p.bytes);
    }
    return dir;
  }

  it('gives each file of `predict` its predictions or its named error, and exits 1 if any failed', async () => {
    const dir = scratch();
    const a = join(dir, 'a.jpg');
    const bad = join(dir, 'bad.jpg');
    const c = join(dir, 'c.jpg');
    const missing = join(dir, 'missing.jpg');
    writeFileSync(a, evalSet[0]!.bytes);
    writeFileSync(bad, readFileSync(join(fixturesDir, 'malformed', 'truncated.jpg')));
    writeFileSync(c, evalSet[10]!.bytes);
    const text = await cli(['predict', '--project', 'closet', a, bad, c, missing, '--api', api]);
    expect(text.code).toBe(1);
    expect(lines(text.out).map((l) => l.split(':')[0])).toEqual([a, c]);
    const err = lines(text.err);
    expect(err).toHaveLength(3);
    expect(err[0]).toMatch(`headstart: ${bad}: corrupt_image: image is truncated`);
    expect(err[1]).toBe(`headstart: ${missing}: unreadable_file: cannot be read: no such file or directory`);
    expect(err[2]).toBe('headstart: 2 of 4 images failed');
    const json = await cli(['predict', '--project', 'closet', a, bad, c, missing, '--api', api, '--json']);
    expect(json.code).toBe(1);
    const res = JSON.parse(json.out) as { file: string; predictions?: unknown[]; error?: { code: string } }[];
    expect(res.map((r) => r.file)).toEqual([a, bad, c, missing]);
    expect(res.map((r) => r.error?.code ?? `${r.predictions?.length} predictions`)).toEqual([
      '3 predictions',
      'corrupt_image',
      '3 predictions',
      'unreadable_file',
    ]);
  }, 120_000);

  it('scores every good image of `eval` when a batch is refused as a whole, naming each file that failed', async () => {
    const dir = photosDir(['hat', 'pants', 'shoes', 't-shirt']);
    bigFile(join(dir, 'hat', 'huge.jpg'), evalSet[0]!.bytes, 30 * MB); // over the CLI's 6 MB: never sent
    bigFile(join(dir, 'shoes', 'padded.jpg'), evalSet[10]!.bytes, 100 * 1024); // over the API's 64 KB
    writeFileSync(
      join(dir, 'pants', 'cut.jpg'),
      readFileSync(join(fixturesDir, 'malformed', 'truncated.jpg')),
    );
    const r = await cli(['eval', '--project', 'closet', dir, '--api', tightApi, '--json']);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual(['headstart: 3 of 23 images could not be scored']);
    const report = JSON.parse(r.out) as {
      n: number;
      accuracy: number;
      failed: { file: string; code: string; message: string; status?: number }[];
    };
    expect(report.n).toBe(20);
    expect(report.accuracy).toBeGreaterThan(0.5);
    expect(report.failed.map((f) => [f.file.slice(dir.length + 1), f.code, f.status])).toEqual([
      ['hat/huge.jpg', 'payload_too_large', undefined],
      ['pants/cut.jpg', 'corrupt_image', 422],
      ['shoes/padded.jpg', 'payload_too_large', 413],
    ]);
    expect(report.failed[0]!.message).toBe(
      "file is 30.0 MB, over the API's 6.0 MB request limit (HEADSTART_MAX_BODY_BYTES); downscale it: photos are resized to the backbone's input, 160 px for the default backbone, so about 512 px on the long side loses nothing",
    );
    const text = await cli(['eval', '--project', 'closet', dir, '--api', tightApi]);
    expect(text.code).toBe(1);
    expect(lines(text.out)).toContain('failed 3:');
    expect(lines(text.out)).toContain(
      "  hat/huge.jpg: payload_too_large: file is 30.0 MB, over the API's 6.0 MB request limit (HEADSTART_MAX_BODY_BYTES); downscale it: photos are resized to the backbone's input, 160 px for the default backbone, so about 512 px on the long side loses nothing",
    );
  }, 180_000);

  it('averages eval macro-F1 over the labels in the folder and lists the model labels that are not', async () => {
    const dir = photosDir(['hat', 'shoes']);
    const r = await cli(['eval', '--project', 'closet', dir, '--api', api, '--json']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as {
      n: number;
      macroF1: number;
      labelsNotInFolder: string[];
      perLabel: { label: string; f1: number; support: number }[];
      labels: string[];
      confusion: number[][];
      examples: { file: string; label: string; predicted: string; score: number; unknown: boolean | null }[];
    };
    expect(report.n).toBe(10);
    // Each scored photo once, by file, and together they make the confusion matrix.
    expect(new Set(report.examples.map((e) => e.file)).size).toBe(10);
    for (const e of report.examples) {
      expect(e.file.startsWith(join(dir, e.label))).toBe(true);
      expect(e.score).toBeGreaterThan(0);
      expect(typeof e.unknown === 'boolean' || e.unknown === null).toBe(true);
    }
    report.labels.forEach((t, ti) => {
      report.labels.forEach((p, pi) => {
        const cell = report.examples.filter((e) => e.label === t && e.predicted === p).length;
        expect(cell).toBe(report.confusion[ti]![pi]);
      });
    });
    expect(report.labelsNotInFolder).toEqual(['pants', 't-shirt']);
    const present = report.perLabel.filter((p) => ['hat', 'shoes'].includes(p.label));
    expect(present.every((p) => p.support === 5)).toBe(true);
    expect(report.macroF1).toBeCloseTo((present[0]!.f1 + present[1]!.f1) / 2, 10);
    const text = await cli(['eval', '--project', 'closet', dir, '--api', api]);
    expect(lines(text.out)).toContain('not in the folder (left out of macro-F1): pants, t-shirt');
  }, 120_000);
});

describe('the AWS SDK', () => {
  it.skipIf(!endpoint)(
    'prints no Node-version warning on a command against a bucket',
    async () => {
      const { bucket } = await motoBucket(endpoint, 'hs-cli-mess');
      const r = await cli([
        'keys',
        'list',
        '--project',
        'closet',
        '--bucket',
        bucket,
        '--endpoint',
        endpoint,
      ]);
      expect(r.code, r.err).toBe(0);
      expect(r.out.trim()).toBe('no keys');
      expect(r.err).toBe('');
    },
    60_000,
  );
});

// Reading a named pipe blocks until something writes to it: the walk must refuse it from its stat instead.
describe('upload of a folder holding a named pipe', () => {
  it('refuses the pipe instead of blocking on it', async () => {
    const { home } = newHome();
    const dir = scratch();
    mkdirSync(join(dir, 'hat'));
    writeFileSync(join(dir, 'hat', 'a.jpg'), photo('hat', 0));
    const fifo = join(dir, 'hat', 'pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    const r = await cli(['upload', dir, '--project', 'closet', '--home', home, '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).refused).toEqual([
      { file: fifo, code: 'unreadable_file', message: 'not a regular file (a device, socket or pipe)' },
    ]);
  }, 60_000);
});
