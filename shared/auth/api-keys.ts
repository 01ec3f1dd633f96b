import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { isValidProject } from '../dataset/upload-key.js';
import { layout } from '../layout/index.js';
import { type ObjectStore, parseJson } from '../store/index.js';
import { InvalidKeyArgumentError, InvalidKeyRecordError } from './auth-errors.js';

/**
 * API keys look like `hs_<keyId>_<secret>`: the key id (16 hex) names the record to fetch, so checking a key is
 * one GET rather than a scan of every key of the project; the secret (32 random bytes, base64url) is what makes
 * it unguessable. The store keeps only sha256 of the whole key: with 256 random bits a fast hash is enough, and
 * a leaked bucket listing gives nothing that can call the API.
 */
const KEY_PATTERN = /^hs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

const keyRecordSchema = z.object({
  schemaVersion: z.literal(1),
  keyId: z.string().regex(KEY_ID_PATTERN),
  project: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string().max(200).optional(),
  createdAt: z.string().datetime(),
});
type KeyRecord = z.infer<typeof keyRecordSchema>;

/** What `listKeys` shows: never the key or its hash. */
export interface ApiKeyInfo {
  keyId: string;
  project: string;
  name?: string;
  createdAt: string;
}

export interface CreatedApiKey {
  /** The only time the key exists in clear: show it once, it cannot be recovered. */
  key: string;
  info: ApiKeyInfo;
}

export type KeyCheck =
  | { valid: true; keyId: string }
  /** 'malformed': not shaped like a Headstart key; 'unknown': no such key for this project; 'mismatch': wrong secret. */
  | { valid: false; reason: 'malformed' | 'unknown' | 'mismatch' };

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The key id inside a presented key, or undefined when it is not shaped like a Headstart key. */
export function parseApiKey(key: string): { keyId: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m ? { keyId: m[1]! } : undefined;
}

function checkProjectName(project: string): void {
  if (!isValidProject(project)) throw new InvalidKeyArgumentError(`'${project}' is not a valid project name`);
}

function info(record: KeyRecord): ApiKeyInfo {
  return {
    keyId: record.keyId,
    project: record.project,
    createdAt: record.createdAt,
    ...(record.name !== undefined ? { name: record.name } : {}),
  };
}

function parseRecord(key: string, body: Uint8Array): KeyRecord {
  return parseJson(body, keyRecordSchema, {
    invalid: (detail, cause) => new InvalidKeyRecordError(`${key} is not a key record: ${detail}`, { cause }),
  });
}

export interface CreateKeyOptions {
  /** A note for people, e.g. 'mobile app'. */
  name?: string;
  now?: Date;
}

/** Creates a key for one project and stores its hash; returns the key in clear exactly once. */
export async function createKey(
  store: ObjectStore,
  project: string,
  options: CreateKeyOptions = {},
): Promise<CreatedApiKey> {
  checkProjectName(project);
  const keyId = randomBytes(8).toString('hex');
  const key = `hs_${keyId}_${randomBytes(32).toString('base64url')}`;
  const record: KeyRecord = keyRecordSchema.parse({
    schemaVersion: 1,
    keyId,
    project,
    sha256: hashApiKey(key),
    createdAt: (options.now ?? new Date()).toISOString(),
    ...(options.name !== undefined ? { name: options.name } : {}),
  });
  // Create-only: a (vanishingly unlikely) id collision must not replace someone else's key.
  await store.put(layout.apiKey(project, keyId), JSON.stringify(record), {
    contentType: 'application/json',
    ifNoneMatch: '*',
  });
  return { key, info: info(record) };
}

/** The project's keys, oldest first. */
export async function listKeys(store: ObjectStore, project: string): Promise<ApiKeyInfo[]> {
  checkProjectName(project);
  const out: KeyRecord[] = [];
  for await (const o of store.list(layout.apiKeysPrefix(project))) {
    if (!o.key.endsWith('.json')) continue;
    const got = await store.get(o.key);
    if (got) out.push(parseRecord(o.key, got.body));
  }
  return out
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId))
    .map(info);
}

/** Deletes a key; true when it existed. Edges that cached it as valid stop accepting it within their cache TTL. */
export async function revokeKey(store: ObjectStore, project: string, keyId: string): Promise<boolean> {
  checkProjectName(project);
  if (!KEY_ID_PATTERN.test(keyId)) throw new InvalidKeyArgumentError(`'${keyId}' is not a key id`);
  const key = layout.apiKey(project, keyId);
  const existed = (await store.head(key)) !== undefined;
  await store.delete(key);
  return existed;
}

/**
 * Checks a presented key against the project's stored hashes. A key of another project is 'unknown' here: its
 * record lives under the other project's prefix, so it can never authorize this one.
 */
export async function checkApiKey(store: ObjectStore, project: string, presented: string): Promise<KeyCheck> {
  checkProjectName(project);
  const parsed = parseApiKey(presented);
  if (!parsed) return { valid: false, reason: 'malformed' };
  const storeKey = layout.apiKey(project, parsed.keyId);
  const got = await store.get(storeKey);
  if (!got) return { valid: false, reason: 'unknown' };
  const record = parseRecord(storeKey, got.body);
  if (record.project !== project || record.keyId !== parsed.keyId) return { valid: false, reason: 'unknown' };
  // Comparing digests, not keys: equal lengths always, and timingSafeEqual leaks nothing about where they differ.
  const same = timingSafeEqual(Buffer.from(hashApiKey(presented), 'hex'), Buffer.from(record.sha256, 'hex'));
  return same ? { valid: true, keyId: record.keyId } : { valid: false, reason: 'mismatch' };
}

export interface KeyVerifierOptions {
  /** How long a verdict (valid or not) is reused; a revoked key keeps working at most this long. Default 30 s. */
  ttlMs?: number;
  /** Cached verdicts; the oldest go first beyond this. Default 10,000. */
  maxEntries?: number;
  /** Milliseconds; injectable for tests. */
  clock?: () => number;
}

export interface KeyVerifier {
  check(project: string, presented: string): Promise<KeyCheck>;
}

/**
 * `checkApiKey` with a short-lived cache, so a busy edge does not pay a store round trip per request. Entries
 * are keyed by the key's sha256, never the key itself.
 */
export function createKeyVerifier(store: ObjectStore, options: KeyVerifierOptions = {}): KeyVerifier {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const clock = options.clock ?? Date.now;
  const cache = new Map<string, { verdict: KeyCheck; until: number }>();
  return {
    async check(project, presented) {
      // Malformed keys cost nothing to refuse and must not fill the cache.
      if (!parseApiKey(presented)) return { valid: false, reason: 'malformed' };
      const id = `${project}\n${hashApiKey(presented)}`;
      const now = clock();
      const hit = cache.get(id);
      if (hit && hit.until > now) return hit.verdict;
      const verdict = await checkApiKey(store, project, presented);
      cache.delete(id);
      cache.set(id, { verdict, until: now + ttlMs });
      while (cache.size > maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
      return verdict;
    },
  };
}
