import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import { dedupeExamples, type LabelConflict } from '../../shared/dataset/dedupe-examples.js';
import { listQuarantine } from '../../shared/dataset/quarantine.js';
import { compareSequencers } from '../../shared/dataset/sequencer.js';
import { listVersions, modeOf, readPointer, readVersion, rollback } from '../../shared/models/index.js';
import { writeRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import type { RecordedOutcome } from '../../shared/pipeline/train-outcome.js';
import { formatTrainOutcome } from '../../shared/pipeline/train-outcome-text.js';
import { readDecision, readTrainingState, type TrainingState } from '../../shared/pipeline/train-project.js';
import { formatProgress, type TrainingProgress } from '../../shared/pipeline/training-progress.js';
import type { ObjectStore } from '../../shared/store/index.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';

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

export async function projectStatus(store: ObjectStore, project: string): Promise<ProjectStatus> {
  const index = createDatasetIndex(store);
  const [examples, quarantine, state, pointer] = await Promise.all([
    index.snapshot(project),
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

export function formatStatus(s: ProjectStatus): string {
  const { dataset } = s;
  const extra = dataset.keys - dataset.examples;
  const lines = [
    `project ${s.project}: ${dataset.examples} examples${extra > 0 ? ` (${dataset.keys} files; each photo counts once)` : ''}`,
  ];
  for (const [label, n] of Object.entries(dataset.labels).sort()) lines.push(`  ${label.padEnd(24)} ${n}`);
  if (dataset.duplicateKeys > 0) {
    lines.push(`duplicates: ${dataset.duplicateKeys} file(s) repeat a photo already in the same label`);
  }
  if (dataset.conflicts.length) {
    lines.push(
      `label conflicts: ${dataset.conflicts.length} (the same photo in several labels; the most recent upload wins)`,
    );
    for (const c of dataset.conflicts) {
      const others = c.keys.filter((k) => k.key !== c.winner.key).map((k) => `${k.key} (${k.label})`);
      lines.push(`  ${c.winner.key} counts as '${c.winner.label}'; also uploaded as ${others.join(', ')}`);
    }
  }
  if (s.quarantined.length) {
    lines.push(`quarantined: ${s.quarantined.length}`);
    for (const q of s.quarantined) lines.push(`  ${q.key}  ${q.code}: ${q.message}`);
  }
  const last = s.training.lastOutcome;
  const progress = s.training.progress;
  lines.push(
    `training: ${s.training.state}${progress ? ` (${formatProgress(progress)})` : ''}${last ? ` (last: ${formatTrainOutcome(last)})` : ''}`,
  );
  lines.push(
    s.model.version
      ? `model: ${s.model.version}  accuracy ${s.model.metrics?.accuracy.toFixed(3)}  macro-F1 ${s.model.metrics?.macroF1.toFixed(3)} (validation, n=${s.model.metrics?.n})`
      : `model: none yet (upload photos to uploads/${s.project}/<label>/, at least 5 per label and 2 labels)`,
  );
  return lines.join('\n');
}

/** How `train --wait` tells time; a test seam, so its give-up rule is tested without real waiting. */
export interface WaitClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: WaitClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/**
 * Requests a training now. Locally the running `npm start` picks it up; against a stack the training queue
 * is nudged. With `wait`, polls the training state until this request has been consumed, and gives up only
 * after `timeoutSeconds` (default 900) in which the state did not change: a fine-tuning that takes longer but
 * keeps reporting progress is waited for.
 */
export async function requestTraining(
  target: Target,
  project: string,
  options: {
    wait: boolean;
    force: boolean;
    timeoutSeconds?: number;
    pollMs?: number;
    clock?: WaitClock;
    /** Called while waiting, each time the training reports a new phase, step or estimate; `line` is for people. */
    onProgress?: (p: { progress: TrainingProgress; line: string }) => void;
  },
): Promise<RecordedOutcome | undefined> {
  const req = await writeRetrainRequest(target.store, project, { immediate: true, force: options.force });
  await target.trigger?.notify(project);
  if (!options.wait) return undefined;
  const clock = options.clock ?? realClock;
  const quietMs = (options.timeoutSeconds ?? 900) * 1000;
  let lastChange = clock.now();
  let seen = '';
  let shown = '';
  let sawTraining = false;
  while (clock.now() - lastChange < quietMs) {
    const state = await readTrainingState(target.store, project);
    const done = finishedOutcome(state, req);
    if (done) return done.outcome;
    const now = JSON.stringify([state?.state, state?.updatedAt, state?.progress]);
    if (now !== seen) {
      seen = now;
      lastChange = clock.now();
      sawTraining ||= state?.state === 'training';
    }
    if (state?.state === 'training' && state.progress && JSON.stringify(state.progress) !== shown) {
      shown = JSON.stringify(state.progress);
      options.onProgress?.({ progress: state.progress, line: formatProgress(state.progress) });
    }
    await clock.sleep(options.pollMs ?? 500);
  }
  throw new CliError(
    waitTimeoutMessage({ local: target.local === true, sawTraining, seconds: quietMs / 1000 }),
  );
}

/** The outcome `train --wait` answers with, once the training state shows this request consumed or failed. */
function finishedOutcome(
  state: TrainingState | undefined,
  req: { sequence: string; requestedAt: string },
): { outcome: RecordedOutcome | undefined } | undefined {
  if (state?.state !== 'idle') return undefined;
  if (state.consumedSequence && compareSequencers(state.consumedSequence, req.sequence) >= 0)
    return { outcome: state.lastOutcome };
  if (state.lastOutcome?.status === 'failed' && state.updatedAt >= req.requestedAt)
    return { outcome: state.lastOutcome };
  return undefined;
}

function waitTimeoutMessage(o: { local: boolean; sawTraining: boolean; seconds: number }): string {
  if (o.sawTraining)
    return `the training reported no progress for ${o.seconds} s and has not finished; it may still: check \`status\``;
  return o.local
    ? `no training picked up the request within ${o.seconds} s: is \`npm start\` running on this home?`
    : `no training started within ${o.seconds} s; check \`status\``;
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

export async function rollbackTo(store: ObjectStore, project: string, version: string): Promise<string> {
  const versions = await listVersions(store, project);
  if (!versions.includes(version)) {
    throw new CliError(
      `project '${project}' has no version '${version}'; \`models --project ${project}\` lists them`,
    );
  }
  const p = await rollback(store, project, version);
  return p.version;
}
