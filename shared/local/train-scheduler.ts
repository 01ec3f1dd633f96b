import { compareSequencers } from '../dataset/sequencer.js';
import { layout, parseTrainingKey } from '../layout/index.js';
import { readRetrainRequest } from '../pipeline/retrain-requests.js';
import { readTrainingState, type TrainOutcome } from '../pipeline/train-project.js';
import type { ObjectStore } from '../store/index.js';

/**
 * The local stand-in for the training queue: projects whose latest retrain request is newer than the one their
 * last training consumed get a training run. A pass is one LIST of `training/`; a project's request and state
 * are read only when their ETags in the listing changed since they were last read, or when a run asked to be
 * tried again (the quiet window, a busy lease, a failure), so an idle pass makes no GET. The trainer itself
 * applies the quiet window and the lease.
 */
export interface TrainScheduler {
  tick(): Promise<TrainOutcome[]>;
  /** When a project asked to be tried again (epoch ms), if any. */
  nextDueAt(): number | undefined;
}

export interface TrainSchedulerOptions {
  store: ObjectStore;
  trainer: { run(project: string): Promise<TrainOutcome> };
  onOutcome?: (o: TrainOutcome) => void;
  onError?: (project: string, err: unknown) => void;
  /** After a failed training, wait this long before trying the same request again. Default 60 s. */
  failureDelayMs?: number;
}

interface Seen {
  /** `request ETag|state ETag` when last read and found settled. */
  etags: string;
  /** Try again at this time even if nothing changed (epoch ms). */
  retryAt?: number;
}

export function createTrainScheduler(options: TrainSchedulerOptions): TrainScheduler {
  const { store } = options;
  const seen = new Map<string, Seen>();
  const failureDelay = options.failureDelayMs ?? 60_000;

  const consider = async (
    project: string,
    etags: string,
    clock: number,
  ): Promise<TrainOutcome | undefined> => {
    const before = seen.get(project);
    if (before && before.etags === etags && (before.retryAt === undefined || before.retryAt > clock)) return;
    const [req, state] = await Promise.all([
      readRetrainRequest(store, project),
      readTrainingState(store, project),
    ]);
    const consumed = state?.consumedSequence;
    if (!req || (consumed && compareSequencers(consumed, req.sequence) >= 0)) {
      seen.set(project, { etags });
      return;
    }
    try {
      const outcome = await options.trainer.run(project);
      if (outcome.status === 'too_early') {
        seen.set(project, { etags, retryAt: clock + outcome.retryInSeconds * 1000 });
      } else if (outcome.status === 'busy') {
        // Another trainer holds the lease; its end changes the state object, and this is the fallback.
        seen.set(project, { etags, retryAt: clock + 10_000 });
      } else {
        seen.delete(project); // its state changed: read again at the next pass to see whether more is wanted
      }
      if (outcome.status !== 'too_early') options.onOutcome?.(outcome);
      return outcome;
    } catch (err) {
      seen.set(project, { etags, retryAt: clock + failureDelay });
      options.onError?.(project, err);
      return undefined;
    }
  };

  return {
    async tick() {
      const etags = new Map<string, { request?: string; state?: string }>();
      for await (const o of store.list(layout.trainingPrefix)) {
        const k = parseTrainingKey(o.key);
        if (!k || k.file === 'lease') continue;
        const e = etags.get(k.project) ?? {};
        e[k.file] = o.etag;
        etags.set(k.project, e);
      }
      const clock = Date.now();
      const outcomes: TrainOutcome[] = [];
      for (const [project, e] of etags) {
        if (!e.request) continue;
        const outcome = await consider(project, `${e.request}|${e.state ?? ''}`, clock);
        if (outcome) outcomes.push(outcome);
      }
      for (const p of seen.keys()) if (!etags.get(p)?.request) seen.delete(p);
      return outcomes;
    },
    nextDueAt() {
      let next: number | undefined;
      for (const s of seen.values()) {
        if (s.retryAt !== undefined && (next === undefined || s.retryAt < next)) next = s.retryAt;
      }
      return next;
    },
  };
}
