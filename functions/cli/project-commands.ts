import { compareSequencers } from '../../shared/dataset/sequencer.js';
import type { ProjectStatus } from '../../shared/pipeline/project-status.js';
import { writeRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import type { RecordedOutcome } from '../../shared/pipeline/train-outcome.js';
import { formatTrainOutcome } from '../../shared/pipeline/train-outcome-text.js';
import { readTrainingState, type TrainingState } from '../../shared/pipeline/train-project.js';
import { formatProgress, type TrainingProgress } from '../../shared/pipeline/training-progress.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';

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
