import { DatasetError, UnknownUploadError, UploadExistsError } from '../dataset/dataset-errors.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { checkLabel, parseUploadKey, type UploadKey } from '../dataset/upload-key.js';
import { messageOf } from '../headstart-error.js';
import { layout } from '../layout/index.js';
import {
  decodeSuspects,
  listVersions,
  readVersionFile,
  type SuspectsFile,
  VERSION_FILES,
} from '../models/index.js';
import { type ObjectStore, PreconditionFailedError } from '../store/index.js';
import type { SnapshotReader } from './project-status.js';

/**
 * Fixing the dataset through uploads/: label suspects to look at, and relabelling or removing an upload. The CLI
 * (`suspects`, `relabel`, `remove`) and the dashboard both go through here, so the index and the retraining
 * follow exactly as for any upload.
 */

/** One suspect as `headstart suspects --json` and the dashboard show it. */
export interface SuspectRow {
  key: string;
  label: string;
  suspectedLabel: string;
  /** Cross-validated probability of `suspectedLabel`. */
  confidence: number;
}

export interface SuspectList {
  /** The version whose training ranked them; null before the first training that did. */
  version: string | null;
  /** Photos the ranking judged. */
  photos: number;
  suspects: SuspectRow[];
  /** Suspects left out because their upload was relabelled or removed since that training. */
  settled: number;
}

/** The newest version that has label suspects (a version trained before them has none). */
async function newestSuspects(
  store: ObjectStore,
  project: string,
): Promise<{ version: string; file: SuspectsFile } | undefined> {
  // Version names sort by time. A version trained before suspects existed (or whose search was refused) has none.
  const versions = (await listVersions(store, project)).sort().reverse();
  for (const version of versions) {
    const read = await readVersionFile(store, project, version, VERSION_FILES.suspects);
    if (read) return { version, file: decodeSuspects(read.body, `version ${version} of '${project}'`) };
  }
  return undefined;
}

/**
 * The newest training's label suspects, most suspect first. The newest version's, promoted or not: the ranking
 * judges the dataset, not the model being served. A suspect whose upload is no longer indexed with that label and
 * those bytes (relabelled, removed or replaced since) is settled and left out.
 */
export async function listSuspects(
  store: ObjectStore,
  project: string,
  options: { limit?: number; snapshot?: SnapshotReader } = {},
): Promise<SuspectList> {
  const snapshot = options.snapshot ?? ((p: string) => createDatasetIndex(store).snapshot(p));
  const [found, examples] = await Promise.all([newestSuspects(store, project), snapshot(project)]);
  if (!found) return { version: null, photos: 0, suspects: [], settled: 0 };
  const live = new Map(examples.map((e) => [e.key, e]));
  const open = found.file.suspects.filter((s) => {
    const e = live.get(s.key);
    return e !== undefined && e.label === s.label && e.sha256 === s.sha256;
  });
  const rows = open.map(({ key, label, suspectedLabel, confidence }) => ({
    key,
    label,
    suspectedLabel,
    confidence,
  }));
  return {
    version: found.version,
    photos: found.file.photos,
    suspects: options.limit === undefined ? rows : rows.slice(0, options.limit),
    settled: found.file.suspects.length - open.length,
  };
}

/** An upload of `project` named by its key (`uploads/P/label/file`) or by `label/file`; it must exist. */
export async function existingUpload(store: ObjectStore, project: string, given: string): Promise<UploadKey> {
  const key = given.startsWith(layout.uploadsPrefix) ? given : `${layout.projectUploads(project)}${given}`;
  let parsed: UploadKey;
  try {
    parsed = parseUploadKey(key);
  } catch (err) {
    throw new DatasetError(
      'invalid_upload_key',
      `'${given}' is not an upload key of ${project}: ${messageOf(err)}`,
      {
        status: 400,
      },
    );
  }
  if (parsed.project !== project) {
    throw new DatasetError(
      'wrong_project',
      `'${given}' is an upload of project '${parsed.project}', not '${project}'`,
      {
        status: 400,
      },
    );
  }
  if (!(await store.head(parsed.key))) {
    throw new UnknownUploadError(
      `project '${project}' has no upload '${parsed.key}'; \`headstart suspects --project ${project}\` lists suspects by key`,
    );
  }
  return parsed;
}

export interface RelabelResult {
  from: string;
  to: string;
  /** False when the upload already had the label: nothing was written. */
  changed: boolean;
}

/**
 * Moves an upload to another label: the same bytes under `uploads/<project>/<label>/<file>`, then the old key
 * deleted. Both are ordinary uploads/ changes, so the index and the retraining follow as for any upload; a crash
 * in between leaves the photo under both labels, where the newer upload's label counts (dedupe-examples.ts).
 */
export async function relabelUpload(
  store: ObjectStore,
  options: { project: string; key: string; label: string },
): Promise<RelabelResult> {
  const { project } = options;
  const source = await existingUpload(store, project, options.key);
  const label = checkLabel(options.label);
  if (label === source.label) return { from: source.key, to: source.key, changed: false };
  const to = layout.upload(project, label, source.file);
  const body = await store.get(source.key);
  if (!body) throw new UnknownUploadError(`upload '${source.key}' went away while it was being moved`);
  try {
    await store.put(to, body.body, { contentType: body.contentType, ifNoneMatch: '*' });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    const there = await store.head(to);
    // The same bytes already there (a relabel run twice, half-way the first time): only the old key is left to go.
    if (there?.etag !== body.etag) {
      throw new UploadExistsError(
        `'${to}' already exists with other bytes; rename or remove one of them first (nothing was changed)`,
      );
    }
  }
  await store.delete(source.key);
  return { from: source.key, to, changed: true };
}

/** Deletes an upload; the index marks it deleted and the retraining follows, as for any upload deleted. */
export async function removeUpload(
  store: ObjectStore,
  options: { project: string; key: string },
): Promise<{ removed: string }> {
  const upload = await existingUpload(store, options.project, options.key);
  await store.delete(upload.key);
  return { removed: upload.key };
}
