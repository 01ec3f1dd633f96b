import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { instrument } from '../../test/support/edge-test-support.js';
import { layout } from '../layout/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import {
  checkApiKey,
  createKey,
  createKeyVerifier,
  hashApiKey,
  InvalidKeyArgumentError,
  InvalidKeyRecordError,
  listKeys,
  parseApiKey,
  revokeKey,
} from './index.js';

let store: ObjectStore;

beforeEach(() => {
  store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-keys-')) });
});

async function allStoredText(prefix: string): Promise<string> {
  let out = '';
  for await (const o of store.list(prefix)) out += new TextDecoder().decode((await store.get(o.key))!.body);
  return out;
}

describe('createKey', () => {
  it('returns the key once and stores only its sha256', async () => {
    const { key, info } = await createKey(store, 'shoes', {
      name: 'web app',
      now: new Date('2025-01-02T03:04:05Z'),
    });
    expect(key).toMatch(/^hs_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(parseApiKey(key)).toEqual({ keyId: info.keyId });
    expect(info).toEqual({
      keyId: info.keyId,
      project: 'shoes',
      name: 'web app',
      createdAt: '2025-01-02T03:04:05.000Z',
    });
    const stored = await allStoredText('keys/');
    expect(stored).not.toContain(key);
    expect(stored).not.toContain(key.slice(20));
    expect(stored).toContain(hashApiKey(key));
    expect(await store.head(layout.apiKey('shoes', info.keyId))).toBeDefined();
  });

  it('gives different keys every time', async () => {
    const a = await createKey(store, 'shoes');
    const b = await createKey(store, 'shoes');
    expect(a.key).not.toBe(b.key);
    expect(a.info.keyId).not.toBe(b.info.keyId);
  });

  it('refuses a project name that could not be a project', async () => {
    await expect(createKey(store, '../etc')).rejects.toBeInstanceOf(InvalidKeyArgumentError);
    await expect(createKey(store, 'Shoes')).rejects.toMatchObject({ code: 'invalid_key_argument' });
  });
});

describe('checkApiKey', () => {
  it('accepts the key on its project only', async () => {
    const { key, info } = await createKey(store, 'shoes');
    await createKey(store, 'hats');
    expect(await checkApiKey(store, 'shoes', key)).toEqual({ valid: true, keyId: info.keyId });
    expect(await checkApiKey(store, 'hats', key)).toEqual({ valid: false, reason: 'unknown' });
  });

  it('tells a wrong secret, an unknown id and a malformed key apart', async () => {
    const { key } = await createKey(store, 'shoes');
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    expect(await checkApiKey(store, 'shoes', `${key.slice(0, -1)}${last}`)).toEqual({
      valid: false,
      reason: 'mismatch',
    });
    expect(await checkApiKey(store, 'shoes', `hs_ffffffffffffffff_${key.slice(-43)}`)).toEqual({
      valid: false,
      reason: 'unknown',
    });
    for (const bad of ['', 'hs_', key.slice(0, -1), `${key}x`, `Bearer ${key}`, 'hs_../../x_abc']) {
      expect(await checkApiKey(store, 'shoes', bad)).toEqual({ valid: false, reason: 'malformed' });
    }
  });

  it('refuses a record copied under another project', async () => {
    const { key, info } = await createKey(store, 'shoes');
    const record = await store.get(layout.apiKey('shoes', info.keyId));
    await store.put(layout.apiKey('hats', info.keyId), record!.body);
    expect(await checkApiKey(store, 'hats', key)).toEqual({ valid: false, reason: 'unknown' });
  });

  it('raises on a record that is not one Headstart wrote', async () => {
    const { key, info } = await createKey(store, 'shoes');
    await store.put(layout.apiKey('shoes', info.keyId), '{"sha256": 1}');
    await expect(checkApiKey(store, 'shoes', key)).rejects.toBeInstanceOf(InvalidKeyRecordError);
  });
});

describe('listKeys and revokeKey', () => {
  it('lists keys oldest first without hashes, and revoking one stops it working', async () => {
    const a = await createKey(store, 'shoes', { now: new Date('2025-01-01T00:00:00Z') });
    const b = await createKey(store, 'shoes', { now: new Date('2025-02-01T00:00:00Z'), name: 'second' });
    await createKey(store, 'hats');
    const listed = await listKeys(store, 'shoes');
    expect(listed).toEqual([a.info, b.info]);
    expect(JSON.stringify(listed)).not.toContain(hashApiKey(a.key));
    expect(await revokeKey(store, 'shoes', a.info.keyId)).toBe(true);
    expect(await revokeKey(store, 'shoes', a.info.keyId)).toBe(false);
    expect(await listKeys(store, 'shoes')).toEqual([b.info]);
    expect(await checkApiKey(store, 'shoes', a.key)).toEqual({ valid: false, reason: 'unknown' });
    expect((await checkApiKey(store, 'shoes', b.key)).valid).toBe(true);
  });

  it('refuses to revoke something that is not a key id', async () => {
    await expect(revokeKey(store, 'shoes', '../x')).rejects.toBeInstanceOf(InvalidKeyArgumentError);
  });
});

describe('createKeyVerifier', () => {
  it('reuses verdicts for the TTL, then reads the store again', async () => {
    const counted = instrument(store);
    const counting = counted.store;
    let now = 0;
    const verifier = createKeyVerifier(counting, { ttlMs: 1000, clock: () => now });
    const { key, info } = await createKey(store, 'shoes');
    for (let i = 0; i < 5; i++) expect((await verifier.check('shoes', key)).valid).toBe(true);
    expect(counted.calls.get).toBe(1);
    expect(await verifier.check('shoes', 'not-a-key')).toEqual({ valid: false, reason: 'malformed' });
    expect(counted.calls.get).toBe(1);
    await revokeKey(store, 'shoes', info.keyId);
    now = 999;
    expect((await verifier.check('shoes', key)).valid).toBe(true);
    now = 1000;
    expect(await verifier.check('shoes', key)).toEqual({ valid: false, reason: 'unknown' });
    expect(counted.calls.get).toBe(2);
  });

  it('keeps at most maxEntries verdicts', async () => {
    const counted = instrument(store);
    const counting = counted.store;
    const verifier = createKeyVerifier(counting, { maxEntries: 2 });
    const keys = await Promise.all([1, 2, 3].map(() => createKey(store, 'shoes')));
    for (const k of keys) await verifier.check('shoes', k.key);
    expect(counted.calls.get).toBe(3);
    await verifier.check('shoes', keys[2]!.key);
    expect(counted.calls.get).toBe(3);
    await verifier.check('shoes', keys[0]!.key);
    expect(counted.calls.get).toBe(4);
  });
});
