import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createFsStore, type StoreChangeEvent } from './fs-store.js';
import { describeObjectStoreConformance } from './object-store-conformance.js';
import { CorruptObjectError, InvalidKeyError, PreconditionFailedError } from './store-errors.js';

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'headstart-fs-store-'));
  roots.push(root);
  return root;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function keysOf(iterable: AsyncIterable<{ key: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of iterable) out.push(item.key);
  return out;
}

describeObjectStoreConformance('FS store', async () => createFsStore({ root: await freshRoot() }));

describe('FS store', () => {
  it('rejects keys that would escape or alias paths under the root', async () => {
    const store = createFsStore({ root: await freshRoot() });
    for (const key of [
      '../x',
      'a/../../x',
      '/etc/passwd',
      'a//b',
      'a/./b',
      'a/',
      '.',
      `a/${'s'.repeat(256)}`,
    ]) {
      await expect(store.put(key, 'x'), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete(key), key).rejects.toBeInstanceOf(InvalidKeyError);
    }
    expect(await keysOf(store.list('../'))).toEqual([]);
  });

  it('lists in UTF-8 byte order, not directory-walk or UTF-16 order', async () => {
    const store = createFsStore({ root: await freshRoot() });
    const keys = ['a/b', 'a-b', 'a.b', 'a0', 'a/b/c', 'a!', 'z', '\u{1F600}', '\uFFFD', 'é'];
    for (const k of keys.filter((k) => k !== 'a/b')) await store.put(k, k);
    await store.put('a/c', 'c');
    // Byte order: '!' (0x21) < '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' (0x30); U+FFFD (EF BF BD) < U+1F600 (F0...).
    expect(await keysOf(store.list(''))).toEqual([
      'a!',
      'a-b',
      'a.b',
      'a/b/c',
      'a/c',
      'a0',
      'z',
      'é',
      '\uFFFD',
      '\u{1F600}',
    ]);
    expect(await keysOf(store.list('a', { startAfter: 'a-b' }))).toEqual(['a.b', 'a/b/c', 'a/c', 'a0']);
  });

  it('refuses a key that is also the directory part of another key', async () => {
    const store = createFsStore({ root: await freshRoot() });
    await store.put('a/b', 'x');
    await expect(store.put('a', 'y')).rejects.toBeInstanceOf(InvalidKeyError);
    await store.put('c', 'x');
    await expect(store.put('c/d', 'y')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.get('c/d')).toBeUndefined();
  });

  it('removes directories emptied by deletes and keeps the rest', async () => {
    const root = await freshRoot();
    const store = createFsStore({ root });
    await store.put('x/y/z/1', '1');
    await store.put('x/2', '2');
    await store.delete('x/y/z/1');
    expect(await readdir(path.join(root, 'objects', 'x'))).toEqual(['2']);
    await store.put('x/y/z/1', '1');
    expect(await keysOf(store.list('x/'))).toEqual(['x/2', 'x/y/z/1']);
  });

  it('notifies onChange after puts and deletes that changed something, and survives a throwing listener', async () => {
    const events: StoreChangeEvent[] = [];
    const store = createFsStore({ root: await freshRoot(), onChange: (e) => events.push(e) });
    const { etag } = await store.put('k', 'v');
    await store.delete('k');
    await store.delete('k');
    await expect(store.put('k2', 'v', { ifMatch: '"nope"' })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(events).toEqual([
      { type: 'put', key: 'k', etag },
      { type: 'delete', key: 'k' },
    ]);

    const throwing = createFsStore({
      root: await freshRoot(),
      onChange: () => {
        throw new Error('listener bug');
      },
    });
    await expect(throwing.put('k', 'v')).resolves.toMatchObject({ etag: expect.any(String) });
    expect(await throwing.get('k')).toBeDefined();
  });

  it('reports a file it did not write as corrupt rather than serving it', async () => {
    const root = await freshRoot();
    const store = createFsStore({ root });
    await store.put('seed', 'x');
    await writeFile(path.join(root, 'objects', 'foreign.jpg'), 'not a store object');
    await expect(store.get('foreign.jpg')).rejects.toBeInstanceOf(CorruptObjectError);
  });

  it('returns the exact bytes of objects just below, at and above the size of its first read', async () => {
    const store = createFsStore({ root: await freshRoot() });
    for (const size of [0, 1, 64 * 1024 - 300, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200_000]) {
      const body = new Uint8Array(size).map((_, i) => (i * 31 + size) % 251);
      await store.put(`sized/${size}`, body, { metadata: { size: String(size) } });
      const got = await store.get(`sized/${size}`);
      expect(got?.body.length).toBe(size);
      expect(Buffer.from(got!.body).equals(Buffer.from(body))).toBe(true);
      expect(got?.metadata).toEqual({ size: String(size) });
    }
  });

  it('reports an object file cut short on disk as corrupt, small or large', async () => {
    const root = await freshRoot();
    const store = createFsStore({ root });
    for (const size of [100, 100_000]) {
      await store.put(`cut/${size}`, new Uint8Array(size).fill(7));
      const file = path.join(root, 'objects', 'cut', String(size));
      const whole = await readFile(file);
      await writeFile(file, whole.subarray(0, whole.length - 10));
      await expect(store.get(`cut/${size}`)).rejects.toBeInstanceOf(CorruptObjectError);
    }
  });

  it('describes itself with a file URL of its root', async () => {
    const root = await freshRoot();
    expect(createFsStore({ root }).description).toBe(pathToFileURL(root).href);
  });

  it('takes over a lock left behind by a process that died mid-write', async () => {
    const root = await freshRoot();
    const store = createFsStore({ root });
    await store.put('seed', 'x'); // creates the layout
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
    expect(dead.pid).toBeGreaterThan(0);
    // Layout detail: locks/<first 40 hex of sha256(key)>.lock holding the holder's pid and host.
    const lock = path.join(
      root,
      'locks',
      `${createHash('sha256').update('k').digest('hex').slice(0, 40)}.lock`,
    );
    const { hostname } = await import('node:os');
    await writeFile(lock, JSON.stringify({ pid: dead.pid, host: hostname(), token: 'crashed', at: '' }));
    await store.put('k', 'v', { ifNoneMatch: '*' });
    expect(new TextDecoder().decode((await store.get('k'))!.body)).toBe('v');
  });

  it('lets exactly one of several processes win a create-if-absent race on one root', async () => {
    const root = await freshRoot();
    const moduleUrl = pathToFileURL(
      path.join(path.dirname(fileURLToPath(import.meta.url)), 'fs-store.ts'),
    ).href;
    const KEYS = 100;
    const child = path.join(root, 'contender.mts');
    // Each contender waits for a shared start time so the puts overlap, then races on every key at once.
    await writeFile(
      child,
      `import { createFsStore } from ${JSON.stringify(moduleUrl)};
const [root, id, startAt] = process.argv.slice(2);
const KEYS = ${KEYS};
const store = createFsStore({ root });
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const won = [];
await Promise.all(Array.from({ length: KEYS }, async (_, i) => {
  try { await store.put('race/' + i, id, { ifNoneMatch: '*' }); won.push(i); }
  catch (err) { if (err.code !== 'precondition_failed') throw err; }
}));
console.log(JSON.stringify(won));
`,
    );
    const startAt = Date.now() + 3000;
    const runs = await Promise.all(
      ['p0', 'p1', 'p2'].map(
        (id) =>
          new Promise<{ id: string; won: number[] }>((resolve, reject) => {
            const proc = spawn(process.execPath, ['--import', 'tsx', child, root, id, String(startAt)], {
              cwd: process.cwd(),
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            let err = '';
            proc.stdout.on('data', (d) => {
              out += d;
            });
            proc.stderr.on('data', (d) => {
              err += d;
            });
            proc.on('error', reject);
            proc.on('close', (code) =>
              code === 0
                ? resolve({ id, won: JSON.parse(out) })
                : reject(new Error(`contender ${id}: ${err}`)),
            );
          }),
      ),
    );
    const store = createFsStore({ root });
    for (let i = 0; i < KEYS; i++) {
      const winners = runs.filter((r) => r.won.includes(i));
      expect(winners, `key race/${i}`).toHaveLength(1);
      expect(new TextDecoder().decode((await store.get(`race/${i}`))!.body)).toBe(winners[0]!.id);
    }
  });
});
