import { createDatasetIndex, type Example } from '../dataset/dataset-index.js';
import { dedupeExamples, type LabelConflict } from '../dataset/dedupe-examples.js';
import { listQuarantine } from '../dataset/quarantine.js';
import { layout, prefixes } from '../layout/index.js';
import {
  listVersions,
  modeOf,
  readPointer,
  readVersion,
  rollback,
  UnknownVersionError,
} from '../models/index.js';
import type { ObjectStore } from '../store/index.js';
import type { RecordedOutcome } from './train-outcome.js';
import { readDecision, readTrainingState } from './train-project.js';
import type { TrainingProgress } from './training-progress.js';

/** What Headstart knows about a project, as `headstart status` and the dashboard show it. */
export interface ProjectStatus {
  project: string;
  dataset: {
    /** Photos per label, each photo (its bytes) counted once. */
    labels: Record<string, number>;
    examples: number;
    /** Upload keys indexed; more than `examples` when some photos sit under several keys. */
    keys: number;
    /** Keys whose photo is already counted under another key of the same label. */
    duplicateKeys: number;
    /** Photos uploaded under several labels, with the label that counts (the most recent upload). */
    conflicts: LabelConflict[];
  };
  quarantined: { key: string; code: string; message: string }[];
  training: {
    state: 'idle' | 'training' | 'never';
    lastOutcome?: RecordedOutcome;
    progress?: TrainingProgress;
  };
  model: {
    version: string | null;
    metrics: { accuracy: number; macroF1: number; n: number } | null;
    labels?: string[];
    createdAt?: string;
  };
}

/** Where a reader gets a project's indexed photos: the index itself by default, or a cache of it. */
export type SnapshotReader = (project: string) => Promise<Example[]>;

export async function projectStatus(
  store: ObjectStore,
  project: string,
  options: { snapshot?: SnapshotReader } = {},
): Promise<ProjectStatus> {
  const snapshot = options.snapshot ?? ((p: string) => createDatasetIndex(store).snapshot(p));
  const [examples, quarantine, state, pointer] = await Promise.all([
    snapshot(project),
    listQuarantine(store, project),
    readTrainingState(store, project),
    readPointer(store, project),
  ]);
  const dataset = dedupeExamples(examples);
  const labels: Record<string, number> = {};
  for (const e of dataset.examples) labels[e.label] = (labels[e.label] ?? 0) + 1;
  const duplicateKeys = dataset.duplicates.reduce((n, d) => n + d.keys.length - 1, 0);
  let model: ProjectStatus['model'] = { version: null, metrics: null };
  if (pointer) {
    const v = await readVersion(store, project, pointer.pointer.version);
    model = {
      version: v.manifest.version,
      metrics: v.manifest.metrics,
      labels: v.manifest.labels,
      createdAt: v.manifest.createdAt,
    };
  }
  return {
    project,
    dataset: {
      labels,
      examples: dataset.examples.length,
      keys: examples.length,
      duplicateKeys,
      conflicts: dataset.conflicts,
    },
    quarantined: quarantine.map((q) => ({ key: q.key, code: q.code, message: q.message })),
    training: {
      state: state?.state ?? 'never',
      ...(state?.lastOutcome ? { lastOutcome: state.lastOutcome } : {}),
      ...(state?.state === 'training' && state.progress ? { progress: state.progress } : {}),
    },
    model,
  };
}

export interface ModelRow {
  version: string;
  current: boolean;
  createdAt: string;
  accuracy: number;
  macroF1: number;
  /** 'head' (a head on pooled features) or 'finetune' (a fine-tuned top on the trunk's activations). */
  mode?: 'head' | 'finetune';
  decision?: string;
  reason?: string;
}

/** Every version of a project with its scores and promotion decision; an unreadable one says why. */
export async function listModels(store: ObjectStore, project: string): Promise<ModelRow[]> {
  const [versions, pointer] = await Promise.all([listVersions(store, project), readPointer(store, project)]);
  const rows: ModelRow[] = [];
  for (const v of versions) {
    try {
      const { manifest } = await readVersion(store, project, v);
      const d = await readDecision(store, project, v);
      rows.push({
        version: v,
        current: pointer?.pointer.version === v,
        createdAt: manifest.createdAt,
        accuracy: manifest.metrics.accuracy,
        macroF1: manifest.metrics.macroF1,
        mode: modeOf(manifest),
        ...(d ? { decision: d.decision, reason: d.reason } : {}),
      });
    } catch (err) {
      rows.push({
        version: v,
        current: false,
        createdAt: '',
        accuracy: Number.NaN,
        macroF1: Number.NaN,
        reason: (err as Error).message,
      });
    }
  }
  return rows;
}

/** Makes an existing version current (one pointer flip); an unknown name is refused before anything is written. */
export async function rollbackTo(store: ObjectStore, project: string, version: string): Promise<string> {
  const versions = await listVersions(store, project);
  if (!versions.includes(version)) {
    throw new UnknownVersionError(
      `project '${project}' has no version '${version}'; \`models --project ${project}\` lists them`,
    );
  }
  const p = await rollback(store, project, version);
  return p.version;
}

/**
 * The projects a store holds: those with a dataset index or model versions, sorted. Lists each prefix skipping
 * past every project it meets, so the cost is a page per project, not one per photo or version.
 */
export async function listProjects(store: ObjectStore): Promise<string[]> {
  const found = new Set<string>();
  for (const prefix of [layout.datasetsPrefix, prefixes.models]) {
    let startAfter: string | undefined;
    for (;;) {
      let next: string | undefined;
      for await (const o of store.list(prefix, startAfter ? { startAfter } : {})) {
        next = o.key.slice(prefix.length).split('/')[0];
        break;
      }
      if (!next) break;
      found.add(next);
      // Past every key of this project: U+FFFF sorts after any character a key of it can hold next.
      startAfter = `${prefix}${next}/\uffff`;
    }
  }
  return [...found].sort();
}
