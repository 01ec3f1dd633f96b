import { createHash } from 'node:crypto';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import { isNotModified, PreconditionFailedError, parseJson } from '../store/index.js';
import { type CurrentPointer, currentPointerSchema } from './current-pointer.js';
import { InvalidVersionError, NoModelError, PointerConflictError } from './model-errors.js';
import {
  type ManifestDraft,
  type ModelManifest,
  modelManifestSchema,
  PEOPLE_FILES,
} from './version-format.js';
import { VERSION_STAGE, versionStageTags } from './version-stage.js';

const MANIFEST = 'manifest.json';
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A version read back from the store with every file checked against the manifest's sha256. */
export interface LoadedVersion {
  manifest: ModelManifest;
  manifestSha256: string;
  files: Map<string, Uint8Array>;
}

/**
 * Writes an immutable version: every file first (create-only, so a version is never overwritten), the manifest
 * last. Nothing points at it yet; `flipPointer` makes it current. Every file, manifest included, is tagged
 * `headstart-stage=candidate` (version-stage.ts), which the bucket's lifecycle rule expires unless the version is
 * promoted; so are the files of a write that fails half-way, which is how those get cleaned up.
 */
export async function writeVersion(
  store: ObjectStore,
  manifest: ManifestDraft,
  files: Record<string, Uint8Array | string>,
): Promise<{ manifest: ModelManifest; manifestSha256: string }> {
  const candidate = versionStageTags(VERSION_STAGE.candidate);
  const hashes: Record<string, string> = {};
  for (const [name, body] of Object.entries(files)) {
    if (name === MANIFEST || name.includes('/'))
      throw new InvalidVersionError(`file name '${name}' is reserved`);
    hashes[name] = sha256(body);
  }
  const full = modelManifestSchema.parse({ ...manifest, head: { ...manifest.head, files: hashes } });
  const { project, version } = full;
  await Promise.all(
    Object.entries(files).map(([name, body]) =>
      store.put(layout.versionFile(project, version, name), body, { ifNoneMatch: '*', tags: candidate }),
    ),
  );
  const json = JSON.stringify(full, null, 2);
  await store.put(layout.versionFile(project, version, MANIFEST), json, {
    ifNoneMatch: '*',
    contentType: 'application/json',
    tags: candidate,
  });
  return { manifest: full, manifestSha256: sha256(json) };
}

/** Reads a version and checks it whole: a file that does not hash to its manifest entry is refused. */
/**
 * One file of a version and its manifest, the file checked against the manifest's sha256: how a reader of a
 * file for people (evaluation.json, suspects.json) reads it without the predictor's files. Undefined when the
 * manifest lists no such file (a version written before it existed).
 */
export async function readVersionFile(
  store: ObjectStore,
  project: string,
  version: string,
  name: string,
): Promise<{ manifest: ModelManifest; body: Uint8Array } | undefined> {
  const { manifest } = await readManifest(store, project, version);
  const expected = manifest.head.files[name];
  if (expected === undefined) return undefined;
  return { manifest, body: await readChecked(store, { project, version, name, expected }) };
}

async function readManifest(
  store: ObjectStore,
  project: string,
  version: string,
): Promise<{ manifest: ModelManifest; body: Uint8Array }> {
  const m = await store.get(layout.versionFile(project, version, MANIFEST));
  if (!m) throw new InvalidVersionError(`version '${version}' of project '${project}' has no manifest`);
  try {
    return { manifest: parseJson(m.body, modelManifestSchema), body: m.body };
  } catch (cause) {
    throw new InvalidVersionError(`manifest of ${project}/${version} is malformed`, { cause });
  }
}

async function readChecked(
  store: ObjectStore,
  f: { project: string; version: string; name: string; expected: string },
): Promise<Uint8Array> {
  const o = await store.get(layout.versionFile(f.project, f.version, f.name));
  if (!o) throw new InvalidVersionError(`${f.project}/${f.version}/${f.name} is missing`);
  const actual = sha256(o.body);
  if (actual !== f.expected) {
    throw new InvalidVersionError(
      `${f.project}/${f.version}/${f.name} has sha256 ${actual}, manifest says ${f.expected}`,
    );
  }
  return o.body;
}

export async function readVersion(
  store: ObjectStore,
  project: string,
  version: string,
  options: {
    /** Leaves out the files for people (evaluation, suspects): what a predictor is built from, and no more. */
    forServing?: boolean;
  } = {},
): Promise<LoadedVersion> {
  const { manifest, body } = await readManifest(store, project, version);
  const files = new Map<string, Uint8Array>();
  await Promise.all(
    Object.entries(manifest.head.files).map(async ([name, expected]) => {
      if (options.forServing && PEOPLE_FILES.has(name)) return;
      files.set(name, await readChecked(store, { project, version, name, expected }));
    }),
  );
  return { manifest, manifestSha256: sha256(body), files };
}

export interface PointerRead {
  pointer: CurrentPointer;
  etag: string;
}

export async function readPointer(store: ObjectStore, project: string): Promise<PointerRead | undefined> {
  const o = await store.get(layout.currentPointer(project));
  if (!o) return undefined;
  return { pointer: parseJson(o.body, currentPointerSchema), etag: o.etag };
}

/**
 * Re-checks the pointer with a conditional GET: `unchanged` costs no body transfer, which is what lets the edge
 * poll every few seconds for new versions.
 */
export async function pollPointer(
  store: ObjectStore,
  project: string,
  etag: string | undefined,
): Promise<{ unchanged: true } | { unchanged: false; read: PointerRead | undefined }> {
  if (!etag) return { unchanged: false, read: await readPointer(store, project) };
  const o = await store.getIfChanged(layout.currentPointer(project), etag);
  if (isNotModified(o)) return { unchanged: true };
  if (!o) return { unchanged: false, read: undefined };
  return {
    unchanged: false,
    read: { pointer: parseJson(o.body, currentPointerSchema), etag: o.etag },
  };
}

export async function requireCurrentVersion(store: ObjectStore, project: string): Promise<PointerRead> {
  const read = await readPointer(store, project);
  if (!read) throw new NoModelError(`project '${project}' has no trained model yet`);
  return read;
}

/**
 * Makes `version` current with a conditional write on the pointer's ETag (or create-if-absent for the first
 * version), so two trainings finishing together cannot both think they won, and the pointer only ever names a
 * version whose files were all written and verified.
 *
 * Whatever the reason, the version's files are first retagged `headstart-stage=promoted` so the lifecycle rule
 * for candidates never expires a version a pointer names. Retagging comes before the pointer write: a crash or a
 * lost race in between leaves a version that is kept but not current, never a current one that expires.
 */
export async function flipPointer(
  store: ObjectStore,
  project: string,
  version: string,
  reason: CurrentPointer['reason'],
  expectedEtag: string | undefined,
  now = new Date(),
): Promise<{ pointer: CurrentPointer; etag: string }> {
  const loaded = await readVersion(store, project, version);
  await markPromoted(store, project, version, loaded.manifest);
  const pointer: CurrentPointer = {
    project,
    version,
    manifestSha256: loaded.manifestSha256,
    promotedAt: now.toISOString(),
    reason,
  };
  try {
    const { etag } = await store.put(layout.currentPointer(project), JSON.stringify(pointer), {
      contentType: 'application/json',
      ...(expectedEtag ? { ifMatch: expectedEtag } : { ifNoneMatch: '*' as const }),
    });
    return { pointer, etag };
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new PointerConflictError(
        `the current version of '${project}' changed while promoting ${version}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}

/** Retags every file of a verified version, manifest included, as promoted; idempotent. */
async function markPromoted(
  store: ObjectStore,
  project: string,
  version: string,
  manifest: ModelManifest,
): Promise<void> {
  const promoted = versionStageTags(VERSION_STAGE.promoted);
  await Promise.all(
    [MANIFEST, ...Object.keys(manifest.head.files)].map((name) =>
      store.putTags(layout.versionFile(project, version, name), promoted),
    ),
  );
}

/** Every version of a project that has a manifest, oldest first (version names sort by creation time). */
export async function listVersions(store: ObjectStore, project: string): Promise<string[]> {
  const out: string[] = [];
  const prefix = layout.modelsPrefix(project);
  for await (const o of store.list(prefix)) {
    const rest = o.key.slice(prefix.length);
    const m = /^([^/]+)\/manifest\.json$/.exec(rest);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Rolls back (or forward) to any earlier version: one verified pointer flip. */
export async function rollback(
  store: ObjectStore,
  project: string,
  version: string,
): Promise<CurrentPointer> {
  const current = await readPointer(store, project);
  return (await flipPointer(store, project, version, 'rollback', current?.etag)).pointer;
}

/** Version names sort by time: a UTC timestamp plus a random suffix, so concurrent trainings never collide. */
export function newVersionName(now = new Date(), random = Math.random): string {
  const ts = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d{3})Z$/, '$1Z');
  return `v${ts}-${Math.floor(random() * 0xffffff)
    .toString(16)
    .padStart(6, '0')}`;
}
