import { createHash } from 'node:crypto';
import type { Backbone } from '../backbone/index.js';
import { readDefaultBackboneId, setDefaultBackbone } from '../backbone/index.js';
import type { DatasetIndex } from '../dataset/dataset-index.js';
import { dedupeExamples } from '../dataset/dedupe-examples.js';
import type { DualExtractor } from '../finetune/index.js';
import { messageOf } from '../headstart-error.js';
import { ImageError } from '../image/index.js';
import { mapLimit } from '../map-limit.js';
import { readPointer, readVersion } from '../models/index.js';
import { type ObjectStore, StoreError, StoreUnavailableError } from '../store/index.js';
import { viewRequest } from './extract-uploads.js';
import { readProjectSettings } from './project-settings.js';
import { cacheViewFeatures, createViewExtractors } from './view-features.js';

export interface MigrationFailure {
  project: string;
  key: string;
  code: string;
  message: string;
}

export interface ProjectMigration {
  project: string;
  /** Distinct photos (by content) in the project's dataset. */
  photos: number;
  /** Photos whose features under the target were computed by this run. */
  extracted: number;
  /** Photos whose features under the target were all there already. */
  alreadyThere: number;
  failed: MigrationFailure[];
  /** Whether a retrain was requested (something changed, or the current version is on another backbone). */
  retrainRequested: boolean;
}

export interface MigrationReport {
  backbone: string;
  trunk?: string;
  projects: ProjectMigration[];
  /** Whether this run made `backbone` the store's default (a migration of every project, with `makeDefault`). */
  madeDefault: boolean;
  /** Whether `backbone` is the store's default after the run (trainings use it). */
  isDefault: boolean;
}

export interface MigrateDeps {
  store: ObjectStore;
  index: DatasetIndex;
  /** The target backbone, loaded; `dual` its fine-tuning trunk when one is published. */
  backbone: Backbone;
  dual?: DualExtractor;
  /** Asks for one training of the project (the CLI writes the request and nudges the training queue). */
  requestRetrain: (project: string) => Promise<void>;
  onProgress?: (line: string) => void;
  maxPixels?: number;
}

/** Every project with a dataset index, from the keys under `datasets/`. */
export async function listIndexedProjects(store: ObjectStore): Promise<string[]> {
  const out = new Set<string>();
  for await (const o of store.list('datasets/')) {
    const project = /^datasets\/([^/]+)\/index\//.exec(o.key)?.[1];
    if (project) out.add(project);
  }
  return [...out].sort();
}

/** Whether the project has a current version that runs on none of `ids` (the target backbone or its trunk). */
async function servesOnAnother(
  store: ObjectStore,
  project: string,
  ids: readonly string[],
): Promise<boolean> {
  const current = await readPointer(store, project);
  if (!current) return false;
  try {
    return !ids.includes((await readVersion(store, project, current.pointer.version)).manifest.backbone.id);
  } catch {
    return true; // an unreadable current version is replaced by the retrain
  }
}

/**
 * Re-extracts one project's photos under the target backbone: reads each indexed photo's upload (checked against
 * the sha256 the index recorded) and caches what the project's settings ask for and is not cached yet. A photo
 * that cannot be read or decoded is reported and the others go on.
 */
async function migrateProject(
  deps: MigrateDeps,
  x: ReturnType<typeof createViewExtractors>,
  project: string,
): Promise<ProjectMigration> {
  const { store } = deps;
  const examples = dedupeExamples(await deps.index.snapshot(project)).examples;
  const settings = await readProjectSettings(store, project);
  const want = viewRequest(settings, deps.maxPixels);
  const result: ProjectMigration = {
    project,
    photos: examples.length,
    extracted: 0,
    alreadyThere: 0,
    failed: [],
    retrainRequested: false,
  };
  let done = 0;
  const fail = (key: string, code: string, message: string) => {
    result.failed.push({ project, key, code, message });
  };
  await mapLimit(examples, 8, async (e) => {
    try {
      const obj = await store.get(e.key);
      if (!obj)
        return fail(e.key, 'upload_missing', 'the upload is gone; its delete removes it from the dataset');
      const sha256 = createHash('sha256').update(obj.body).digest('hex');
      if (sha256 !== e.sha256) {
        return fail(
          e.key,
          'upload_changed',
          'the upload was replaced since it was indexed; its new bytes are extracted by the precompute function',
        );
      }
      const wrote = await cacheViewFeatures(store, x, { body: obj.body, sha256 }, want);
      if (wrote > 0) result.extracted++;
      else result.alreadyThere++;
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      if (!(err instanceof ImageError || err instanceof StoreError)) throw err;
      fail(e.key, err.code, messageOf(err));
    } finally {
      done++;
      if (done % 50 === 0 || done === examples.length) {
        deps.onProgress?.(
          `${project}: ${done} of ${examples.length} photos (extracted ${result.extracted}, already there ${result.alreadyThere}, failed ${result.failed.length})`,
        );
      }
    }
  });
  return result;
}

/** Asks for a retrain where it changes something: new features, or a current version on another backbone. */
async function retrainIfNeeded(
  deps: MigrateDeps,
  ids: readonly string[],
  m: ProjectMigration,
): Promise<void> {
  if (m.photos === 0) return;
  if (m.extracted > 0 || (await servesOnAnother(deps.store, m.project, ids))) {
    await deps.requestRetrain(m.project);
    m.retrainRequested = true;
  }
}

/**
 * `headstart backbone migrate`: re-extracts every indexed photo of the projects (all by default) under the
 * target backbone (and its trunk), resumably: photos whose features under the target exist are skipped, so a
 * second run extracts nothing. With `makeDefault` (every project migrated), the target becomes the store's
 * default backbone before retrains are requested, so they train on it; existing versions keep serving on the
 * backbone their manifest names.
 */
export async function migrateBackbone(
  deps: MigrateDeps,
  options: { projects?: readonly string[]; makeDefault?: boolean } = {},
): Promise<MigrationReport> {
  const x = createViewExtractors({ backbone: deps.backbone, ...(deps.dual ? { dual: deps.dual } : {}) });
  const projects = options.projects ?? (await listIndexedProjects(deps.store));
  const id = deps.backbone.manifest.id;
  const report: MigrationReport = {
    backbone: id,
    ...(x.dual ? { trunk: x.dual.trunkId } : {}),
    projects: [],
    madeDefault: false,
    isDefault: false,
  };
  for (const project of projects) report.projects.push(await migrateProject(deps, x, project));
  if (options.makeDefault && (await readDefaultBackboneId(deps.store)) !== id) {
    await setDefaultBackbone(deps.store, id);
    report.madeDefault = true;
    // Photos indexed during the first pass were extracted under the old default: a second pass (which skips
    // everything already there) catches them, now that new uploads are extracted under the target.
    for (const m of report.projects) {
      const again = await migrateProject(deps, x, m.project);
      m.photos = again.photos;
      m.extracted += again.extracted;
      m.failed = again.failed;
      m.alreadyThere = m.photos - m.extracted - m.failed.length;
    }
  }
  // Trainings use the store's default backbone: retraining a project on anything else would change nothing.
  report.isDefault = (await readDefaultBackboneId(deps.store)) === id;
  if (report.isDefault) {
    const ids = [id, ...(x.dual ? [x.dual.trunkId] : [])];
    for (const m of report.projects) await retrainIfNeeded(deps, ids, m);
  }
  return report;
}
