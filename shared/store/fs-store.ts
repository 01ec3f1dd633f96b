import { createHash, randomBytes } from 'node:crypto';
import { type Dirent, promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type {
  ListOptions,
  NotModified,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
} from './object-store.js';
import {
  CorruptObjectError,
  InvalidKeyError,
  InvalidOptionsError,
  NoSuchKeyError,
  PreconditionFailedError,
  StoreError,
  StoreUnavailableError,
} from './store-errors.js';
import {
  assertValidKey,
  assertValidPrefix,
  compareKeys,
  type ParsedPutOptions,
  parsePutOptions,
  parseTags,
  sameEtag,
  toBytes,
  utf8Length,
} from './store-input.js';

export type StoreChangeEvent = { type: 'put'; key: string; etag: string } | { type: 'delete'; key: string };

export interface FsStoreOptions {
  /** Directory holding the store; created on first use. */
  root: string;
  /**
   * Called after a put lands or a delete removes an object, in the process that made the change only (writes by
   * other processes sharing the root are not seen). Exceptions it throws are swallowed: the write has already
   * happened, and turning it into a failure would make callers retry a change that succeeded.
   */
  onChange?: (event: StoreChangeEvent) => void;
}

/**
 * The embedded store for running Headstart on one machine.
 *
 * Layout under `root`:
 * - `objects/<key>`: one file per object, named by its key. The file is a small header (magic, length, JSON with
 *   ETag, size, content type, metadata and tags) followed by the body. Keeping header and body in one file means
 *   a single `rename` replaces both, so a reader never pairs a new body with an old ETag, as a sidecar would
 *   allow. Replacing an object's tags rewrites its file the same way (under the key's lock, keeping the mtime,
 *   which is the object's last-modified time).
 * - `tmp/`: bodies being written. Same filesystem as `objects/`, so `rename` is atomic; kept apart so listing
 *   never sees half-written files and crash leftovers are swept in one place.
 * - `locks/`: per-key lock files created with O_EXCL (`wx`). Every mutation of a key (put, conditional or not,
 *   and delete) holds the key's lock while it checks the current ETag and renames, which makes conditional
 *   writes atomic across processes sharing the root, not just within one. Unconditional puts take it too:
 *   otherwise one could slip between a conditional put's check and its rename. Readers take no lock; they
 *   open the file once and see the old or the new inode, complete either way.
 *
 * Limits compared with S3: a key cannot also be the directory part of another key (`a` and `a/b`), which
 * fails with InvalidKeyError; segments are limited to 255 bytes; case-insensitive filesystems fold keys that
 * differ only in case.
 */
export function createFsStore(options: FsStoreOptions): ObjectStore {
  const parsed = z
    .object({ root: z.string().min(1), onChange: z.function().optional() })
    .strict()
    .safeParse(options);
  if (!parsed.success) {
    throw new InvalidOptionsError(
      `invalid FS store options: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  }
  return new FsObjectStore(path.resolve(options.root), options.onChange);
}

// PNG-style magic: a high byte and CR LF catch files mangled by text-mode transfers.
const MAGIC = Uint8Array.from([0x89, 0x48, 0x53, 0x4f, 0x42, 0x4a, 0x0d, 0x0a]); // \x89 H S O B J \r \n
const PREAMBLE_BYTES = MAGIC.length + 4;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_SEGMENT_BYTES = 255;
// Locks are held only across an ETag check and a rename, milliseconds; an older one was left by a crash.
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 60_000;
const TEMP_STALE_MS = 60 * 60 * 1000;
/** Temps are named `<host tag>-<pid>-<random>.tmp`, so a sweep can tell a dead writer's from a live one's. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const TEMP_NAME = /^([0-9a-f]{8})-(\d+)-[0-9a-f]+\.tmp$/;

const headerSchema = z.object({
  v: z.literal(1),
  etag: z.string(),
  size: z.number().int().nonnegative(),
  contentType: z.string(),
  metadata: z.record(z.string()),
  /** Absent in objects written without tags (and in every object written before tags existed). */
  tags: z.record(z.string()).optional(),
});
type ObjectHeader = z.infer<typeof headerSchema>;

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function wrapFsError(err: unknown, what: string): Error {
  if (err instanceof StoreError) return err;
  const code = errCode(err);
  if (code === 'ENOSPC' || code === 'EIO' || code === 'EMFILE' || code === 'ENFILE' || code === 'EBUSY') {
    return new StoreUnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  return new StoreError('fs_error', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

function headerFor(opts: ParsedPutOptions, etag: string, body: Uint8Array): ObjectHeader {
  return {
    v: 1,
    etag,
    size: body.byteLength,
    contentType: opts.contentType,
    metadata: opts.metadata,
    ...(Object.keys(opts.tags).length > 0 ? { tags: opts.tags } : {}),
  };
}

function md5Etag(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

function validSegment(segment: string): boolean {
  return segment !== '' && segment !== '.' && segment !== '..' && utf8Length(segment) <= MAX_SEGMENT_BYTES;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** In-process queues per lock path, shared by every store instance so two stores on one root queue too. */
const lockQueues = new Map<string, Promise<void>>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

const lockInfoSchema = z.object({ pid: z.number(), host: z.string(), token: z.string() });

/**
 * Holds `lockPath` for the duration of `fn`: first in-process (a promise queue, so callers in this process do
 * not poll), then across processes with an O_EXCL lock file.
 */
async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const previous = lockQueues.get(lockPath) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => {
    done = resolve;
  });
  const tail = previous.then(() => mine);
  lockQueues.set(lockPath, tail);
  await previous;
  try {
    const token = randomBytes(12).toString('hex');
    await acquireLockFile(lockPath, token);
    try {
      return await fn();
    } finally {
      await releaseLockFile(lockPath, token);
    }
  } finally {
    done();
    if (lockQueues.get(lockPath) === tail) lockQueues.delete(lockPath);
  }
}

async function acquireLockFile(lockPath: string, token: string): Promise<void> {
  const content = JSON.stringify({ pid: process.pid, host: hostname(), token, at: new Date().toISOString() });
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 1;
  for (;;) {
    try {
      await fs.writeFile(lockPath, content, { flag: 'wx' });
      return;
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    if (await breakStaleLock(lockPath)) continue;
    if (Date.now() > deadline) {
      throw new StoreUnavailableError(`timed out after ${LOCK_WAIT_MS} ms waiting for lock ${lockPath}`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

async function releaseLockFile(lockPath: string, token: string): Promise<void> {
  // Only remove the lock if it is still ours; it may have been judged stale and re-taken by someone else.
  const text = await fs.readFile(lockPath, 'utf8').catch(() => '');
  if (text.includes(token)) await fs.unlink(lockPath).catch(() => undefined);
}

/** Removes a lock whose holder died (same host, pid gone) or that is far older than any write; true if gone. */
async function breakStaleLock(lockPath: string): Promise<boolean> {
  let text: string;
  let stat: Stats;
  try {
    stat = await fs.stat(lockPath);
    text = await fs.readFile(lockPath, 'utf8');
  } catch (err) {
    if (errCode(err) === 'ENOENT') return true;
    throw err;
  }
  let info: z.infer<typeof lockInfoSchema> | undefined;
  try {
    info = lockInfoSchema.parse(JSON.parse(text));
  } catch {
    info = undefined; // still being written by its creator, or garbage: only age can tell
  }
  const holderDead = info !== undefined && info.host === hostname() && !isAlive(info.pid);
  if (!holderDead && Date.now() - stat.mtimeMs < LOCK_STALE_MS) return false;
  // Move it aside rather than unlink so two breakers cannot both "break" and one delete a fresh lock.
  const aside = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return true;
    throw err;
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => '');
  if (moved !== text) {
    // Released and re-taken between our look and our move: hand the live lock back if nobody took its place.
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  await fs.unlink(aside).catch(() => undefined);
  return true;
}

function encodePreamble(header: ObjectHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(PREAMBLE_BYTES + json.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length);
  out.set(json, PREAMBLE_BYTES);
  return out;
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

interface OpenedObject {
  header: ObjectHeader;
  bodyOffset: number;
  stat: Stats;
  /** The file's first bytes, read with the header: a small object's whole body is in them. */
  prefix: Uint8Array;
}

/**
 * Bytes read at once from an object's start. Most objects (features, manifests, requests) are smaller, so one
 * read brings header and body: three reads per get were most of a 10,000-text training's feature loading.
 */
const FIRST_READ_BYTES = 64 * 1024;

/** Reads and checks the header; the caller keeps the handle, so body and header come from the same inode. */
async function readHeader(fh: FileHandle, stat: Stats, key: string): Promise<OpenedObject> {
  const corrupt = (why: string) => new CorruptObjectError(`object ${key} is unreadable: ${why}`);
  const prefix = await readExactly(fh, Math.max(PREAMBLE_BYTES, Math.min(stat.size, FIRST_READ_BYTES)), 0);
  if (prefix.length < PREAMBLE_BYTES || MAGIC.some((b, i) => prefix[i] !== b)) {
    throw corrupt('not written by this store (bad magic)');
  }
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset).getUint32(MAGIC.length);
  if (headerLength > MAX_HEADER_BYTES) throw corrupt('header too large');
  const headerEnd = PREAMBLE_BYTES + headerLength;
  const headerBytes =
    headerEnd <= prefix.length
      ? prefix.subarray(PREAMBLE_BYTES, headerEnd)
      : await readExactly(fh, headerLength, PREAMBLE_BYTES);
  let header: ObjectHeader;
  try {
    header = headerSchema.parse(JSON.parse(new TextDecoder().decode(headerBytes)));
  } catch (err) {
    throw new CorruptObjectError(`object ${key} is unreadable: bad header`, { cause: err });
  }
  if (stat.size !== headerEnd + header.size) throw corrupt(`size ${stat.size} != ${headerEnd + header.size}`);
  return { header, bodyOffset: headerEnd, stat, prefix };
}

const ABSENT_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

class FsObjectStore implements ObjectStore {
  readonly description: string;
  private readonly objectsDir: string;
  private readonly tmpDir: string;
  private readonly locksDir: string;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly root: string,
    private readonly onChange: ((event: StoreChangeEvent) => void) | undefined,
  ) {
    this.description = pathToFileURL(root).href;
    this.objectsDir = path.join(root, 'objects');
    this.tmpDir = path.join(root, 'tmp');
    this.locksDir = path.join(root, 'locks');
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await Promise.all(
        [this.objectsDir, this.tmpDir, this.locksDir].map((d) => fs.mkdir(d, { recursive: true })),
      );
      await this.sweepTemps();
    })().catch((err) => {
      this.ready = undefined;
      throw wrapFsError(err, `cannot open store at ${this.root}`);
    });
    return this.ready;
  }

  /**
   * Temp files of writers that died (an upload interrupted by Ctrl-C, a killed stack) are removed when the store
   * opens: a temp named by a pid on this host that no longer runs has no writer to finish it. A live writer's
   * temp is never touched, however old; temps of other hosts (a shared disk) and of older versions, whose names
   * carry no pid, go by age only.
   */
  private async sweepTemps(): Promise<void> {
    const names = await fs.readdir(this.tmpDir).catch(() => [] as string[]);
    const cutoff = Date.now() - TEMP_STALE_MS;
    await Promise.all(
      names.map(async (name) => {
        const file = path.join(this.tmpDir, name);
        const owner = TEMP_NAME.exec(name);
        if (owner && owner[1] === HOST_TAG) {
          if (isAlive(Number(owner[2]))) return;
        } else {
          const stat = await fs.stat(file).catch(() => undefined);
          if (!stat || stat.mtimeMs >= cutoff) return;
        }
        await fs.rm(file, { force: true }).catch(() => undefined);
      }),
    );
  }

  private fileFor(key: string): string {
    assertValidKey(key);
    if (key.startsWith('/'))
      throw new InvalidKeyError(`object key must be relative, not ${JSON.stringify(key)}`);
    const segments = key.split('/');
    if (!segments.every(validSegment)) {
      throw new InvalidKeyError(
        `object key ${JSON.stringify(key)} has an empty, '.' or '..' segment, or one over ${MAX_SEGMENT_BYTES} bytes`,
      );
    }
    return path.join(this.objectsDir, ...segments);
  }

  private lockFor(key: string): string {
    return path.join(this.locksDir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.lock`);
  }

  private notify(event: StoreChangeEvent): void {
    try {
      this.onChange?.(event);
    } catch {
      // See FsStoreOptions.onChange: a failing listener must not undo a completed write.
    }
  }

  /** Opens the object file and runs `fn` with its header; undefined when no object is stored under the key. */
  private async withObject<T>(
    key: string,
    fn: (fh: FileHandle, opened: OpenedObject) => Promise<T>,
  ): Promise<T | undefined> {
    const file = this.fileFor(key);
    await this.init();
    let fh: FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      if (ABSENT_CODES.has(errCode(err) ?? '')) return undefined;
      throw wrapFsError(err, `read ${key}`);
    }
    try {
      const stat = await fh.stat();
      if (!stat.isFile()) return undefined; // a directory: only other keys live below it
      return await fn(fh, await readHeader(fh, stat, key));
    } catch (err) {
      if (ABSENT_CODES.has(errCode(err) ?? '')) return undefined;
      throw wrapFsError(err, `read ${key}`);
    } finally {
      await fh.close();
    }
  }

  private async readBody(fh: FileHandle, opened: OpenedObject, key: string): Promise<StoredObject> {
    const end = opened.bodyOffset + opened.header.size;
    const body =
      end <= opened.prefix.length
        ? opened.prefix.slice(opened.bodyOffset, end)
        : await readExactly(fh, opened.header.size, opened.bodyOffset);
    if (body.length !== opened.header.size) throw new CorruptObjectError(`object ${key} is truncated`);
    return {
      key,
      body,
      etag: opened.header.etag,
      contentType: opened.header.contentType,
      metadata: { ...opened.header.metadata },
      lastModified: opened.stat.mtime,
    };
  }

  get(key: string): Promise<StoredObject | undefined> {
    return this.withObject(key, (fh, opened) => this.readBody(fh, opened, key));
  }

  async getIfChanged(key: string, etag: string): Promise<StoredObject | NotModified | undefined> {
    if (typeof etag !== 'string' || etag.length === 0)
      throw new InvalidOptionsError('getIfChanged needs an etag');
    return this.withObject<StoredObject | NotModified>(key, async (fh, opened) =>
      sameEtag(opened.header.etag, etag)
        ? { notModified: true, etag: opened.header.etag }
        : this.readBody(fh, opened, key),
    );
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.withObject(key, async (_fh, { header, stat }) => ({
      key,
      size: header.size,
      etag: header.etag,
      lastModified: stat.mtime,
    }));
  }

  async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }> {
    const file = this.fileFor(key);
    const opts = parsePutOptions(options);
    const bytes = toBytes(body);
    await this.init();
    const etag = md5Etag(bytes);
    const tmp = await this.writeTemp(headerFor(opts, etag, bytes), bytes, key);
    try {
      await withLock(this.lockFor(key), async () => {
        if (opts.ifNoneMatch || opts.ifMatch) await this.checkPrecondition(key, opts);
        await this.install(tmp, file, key);
      });
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw wrapFsError(err, `put ${key}`);
    }
    this.notify({ type: 'put', key, etag });
    return { etag };
  }

  private async checkPrecondition(key: string, opts: ParsedPutOptions): Promise<void> {
    const current = await this.head(key);
    if (opts.ifNoneMatch && current) {
      throw new PreconditionFailedError(`put ${key}: an object already exists (etag ${current.etag})`);
    }
    if (opts.ifMatch && !current)
      throw new PreconditionFailedError(`put ${key}: no object to match ${opts.ifMatch}`);
    if (opts.ifMatch && current && !sameEtag(current.etag, opts.ifMatch)) {
      throw new PreconditionFailedError(`put ${key}: etag is ${current.etag}, not ${opts.ifMatch}`);
    }
  }

  async putTags(key: string, tags: Record<string, string>): Promise<void> {
    const file = this.fileFor(key);
    const valid = parseTags(tags);
    await this.init();
    try {
      await withLock(this.lockFor(key), async () => {
        // Under the key's lock nobody replaces the object between this read and the rename below.
        const current = await this.withObject(key, async (fh, opened) => ({
          object: await this.readBody(fh, opened, key),
          header: opened.header,
          mtime: opened.stat.mtime,
        }));
        if (!current) throw new NoSuchKeyError(`tag ${key}: no such object`);
        const tmp = await this.writeTemp({ ...current.header, tags: valid }, current.object.body, key);
        try {
          await fs.utimes(tmp, current.mtime, current.mtime);
          await this.install(tmp, file, key);
        } catch (err) {
          await fs.rm(tmp, { force: true }).catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      throw wrapFsError(err, `tag ${key}`);
    }
  }

  async getTags(key: string): Promise<Record<string, string> | undefined> {
    return this.withObject(key, async (_fh, { header }) => ({ ...header.tags }));
  }

  private async writeTemp(header: ObjectHeader, body: Uint8Array, key: string): Promise<string> {
    const tmp = path.join(this.tmpDir, `${HOST_TAG}-${process.pid}-${randomBytes(12).toString('hex')}.tmp`);
    const preamble = encodePreamble(header);
    try {
      const fh = await fs.open(tmp, 'wx');
      try {
        await fh.writev([preamble, body]);
        // Flushed before the rename so a crash leaves the old or the new object, never a torn one.
        await fh.datasync();
      } finally {
        await fh.close();
      }
      return tmp;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw wrapFsError(err, `put ${key}`);
    }
  }

  private async install(tmp: string, file: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.rename(tmp, file);
        return;
      } catch (err) {
        const code = errCode(err);
        // A concurrent delete of a sibling pruned the parent directory between our mkdir and rename.
        if (code === 'ENOENT' && attempt < 10) continue;
        if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTEMPTY') {
          throw new InvalidKeyError(
            `object key ${JSON.stringify(key)} collides with another key: the FS store cannot hold both 'a' and 'a/b'`,
            { cause: err },
          );
        }
        throw err;
      }
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.fileFor(key);
    await this.init();
    let removed: boolean;
    try {
      removed = await withLock(this.lockFor(key), async () => {
        try {
          await fs.unlink(file);
          return true;
        } catch (err) {
          if (ABSENT_CODES.has(errCode(err) ?? '') || errCode(err) === 'EPERM') return false;
          throw err;
        }
      });
    } catch (err) {
      throw wrapFsError(err, `delete ${key}`);
    }
    if (!removed) return;
    await this.pruneEmptyDirs(path.dirname(file));
    this.notify({ type: 'delete', key });
  }

  /** Keeps the tree free of directories left empty by deletes; stops at the first non-empty one. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    let current = dir;
    while (current !== this.objectsDir && current.startsWith(this.objectsDir + path.sep)) {
      try {
        await fs.rmdir(current);
      } catch {
        return;
      }
      current = path.dirname(current);
    }
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    const startAfter = options?.startAfter;
    if (startAfter !== undefined) assertValidPrefix(startAfter, 'startAfter');
    await this.init();
    // Only the directory named by the prefix's complete segments can hold matches; a prefix whose segments no
    // valid key could have (`..`, empty) matches nothing, and must not send the walk outside the store.
    const dirPart = prefix.slice(0, Math.max(prefix.lastIndexOf('/'), 0));
    const dirSegments = dirPart === '' ? [] : dirPart.split('/');
    if (prefix.startsWith('/') || !dirSegments.every(validSegment)) return;
    const keys: string[] = [];
    try {
      await this.walk(
        path.join(this.objectsDir, ...dirSegments),
        dirPart === '' ? '' : `${dirPart}/`,
        prefix,
        keys,
      );
    } catch (err) {
      throw wrapFsError(err, `list ${prefix}`);
    }
    // Directory order is not S3's order ('a-b' < 'a/b' < 'a0' in bytes), so sort the full keys.
    const selected = keys
      .filter((k) => startAfter === undefined || compareKeys(k, startAfter) > 0)
      .sort(compareKeys);
    const batch = 32;
    for (let i = 0; i < selected.length; i += batch) {
      const infos = await Promise.all(selected.slice(i, i + batch).map((k) => this.listed(k)));
      for (const info of infos) if (info) yield info; // deleted since the walk: skip, as a later S3 page would
    }
  }

  /**
   * A listed key's info. A file another tool put under `objects/` with a name no key may have (a control
   * character) or without a valid header cannot be read, but is still listed, as S3 lists every key it holds:
   * otherwise one such file would stop every listing, and nobody could set it aside. Its ETag is made from its
   * size and mtime, so it stays the same until the file changes; reading it fails with the store's error.
   */
  private async listed(key: string): Promise<ObjectInfo | undefined> {
    try {
      return await this.head(key);
    } catch (err) {
      if (!(err instanceof InvalidKeyError || err instanceof CorruptObjectError)) throw err;
      const stat = await fs.stat(path.join(this.objectsDir, ...key.split('/'))).catch(() => undefined);
      if (!stat?.isFile()) return undefined;
      const etag = `"${createHash('md5').update(`unreadable:${stat.size}:${stat.mtimeMs}`).digest('hex')}"`;
      return { key, size: stat.size, etag, lastModified: stat.mtime };
    }
  }

  private async walk(dir: string, keyPrefix: string, prefix: string, out: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (ABSENT_CODES.has(errCode(err) ?? '')) return;
      throw err;
    }
    for (const entry of entries) {
      const key = keyPrefix + entry.name;
      if (entry.isDirectory()) {
        const below = `${key}/`;
        if (below.startsWith(prefix) || prefix.startsWith(below)) {
          await this.walk(path.join(dir, entry.name), below, prefix, out);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }
}
