import { compareSequencers } from '../dataset/sequencer.js';
import { readRetrainRequest } from '../pipeline/retrain-requests.js';
import { readTrainingState, type TrainOutcome } from '../pipeline/train-project.js';
import type { ObjectStore } from '../store/index.js';

/**
 * The local stand-in for the training queue: every tick, projects whose latest retrain request is newer than
 * the one their last training consumed get a training run. The trainer itself applies the quiet window and the
 * lease, so a tick that comes too early just tries again on the next one.
 */
export interface TrainScheduler {
  tick(): Promise<TrainOutcome[]>;
}

export function createTrainScheduler(options: {
  store: ObjectStore;
  trainer: { run(project: string): Promise<TrainOutcome> };
  onOutcome?: (o: TrainOutcome) => void;
  onError?: (project: string, err: unknown) => void;
}): TrainScheduler {
  const { store } = options;
  return {
    async tick() {
      const projects: string[] = [];
      for await (const o of store.list('training/')) {
        const m = /^training\/([^/]+)\/request\.json$/.exec(o.key);
        if (m) projects.push(m[1]!);
      }
      const outcomes: TrainOutcome[] = [];
      for (const project of projects) {
        const [req, state] = await Promise.all([
          readRetrainRequest(store, project),
          readTrainingState(store, project),
        ]);
        if (!req) continue;
        const consumed = state?.consumedSequence;
        if (consumed && compareSequencers(consumed, req.sequence) >= 0) continue;
        try {
          const outcome = await options.trainer.run(project);
          outcomes.push(outcome);
          if (outcome.status !== 'too_early') options.onOutcome?.(outcome);
        } catch (err) {
          options.onError?.(project, err);
        }
      }
      return outcomes;
    },
  };
}
