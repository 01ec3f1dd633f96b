import { DEFAULT_FOLDS, stratifiedFolds } from './cross-validation.js';
import { argmaxRow } from './metrics.js';
import {
  fitConfiguration,
  SPARSE_SEARCH_MAX_CELLS,
  type TrainConfig,
  type TrainInput,
  type TrainOptions,
} from './train-head.js';

/**
 * Large sparse inputs (text past SPARSE_SEARCH_MAX_CELLS non-zeros) get this many folds, each fitted for at most
 * SPARSE_SUSPECT_STEPS examples: at 10,000 texts the five folds of the chosen epochs cost 12 s, more than the
 * whole head search. On banking77 with 5% of labels moved to random intents (500 texts), 3 folds of one epoch
 * put 99.4% of them in the top 1,000 suspects, as 5 folds of 4 epochs did, in a fifth of the time.
 */
const SPARSE_SUSPECT_FOLDS = 3;
const SPARSE_SUSPECT_STEPS = 8000;

/** A photo whose given label its out-of-fold prediction disagrees with. */
export interface LabelSuspect {
  /** The photo's row in the input. */
  row: number;
  label: number;
  suspected: number;
  /** Out-of-fold probability of `suspected`. */
  confidence: number;
  /** Out-of-fold probability of the given label. */
  labelScore: number;
}

export interface SuspectSearch {
  /** Most suspect first. */
  suspects: LabelSuspect[];
  folds: number;
  /** Photos predicted out of fold (augmented views train but are never scored). */
  photos: number;
  seconds: number;
}

/**
 * Photos whose given label the model confidently disagrees with. Each photo is predicted by the head the search
 * chose, trained exactly as the refit is on the other folds' photos (and their augmented views), so no photo
 * vouches for its own label. Photos predicted as another label are ranked by how little probability their given
 * label keeps (its "self-confidence"). Measured by bench/suspects-bench.ts (clothing-small, 5% of labels moved,
 * seed 1): 0.84 (softmax head) and 0.88 (MLP) of the moved photos in the top 2x, against 0.78 and 0.81 ranking by
 * the margin of the suspected label over the given one and 0.66 and 0.68 by the suspected label's probability.
 *
 * Cost: `folds` fits of one configuration, against the search's (candidates x folds) fits and its refit.
 */
export async function findLabelSuspects(
  input: TrainInput,
  options: {
    config: TrainConfig;
    folds?: number;
    trainOptions?: TrainOptions;
    /** Called after each fold; a returned promise is awaited (it lets the event loop run between folds). */
    onFold?: (progress: { done: number; total: number }) => void | Promise<void>;
  },
): Promise<SuspectSearch> {
  const started = performance.now();
  const k = input.labelNames.length;
  const n = input.ids.length;
  const rows = Array.from({ length: n }, (_, i) => i);
  const large = (input.sparse?.indices.length ?? 0) > SPARSE_SEARCH_MAX_CELLS;
  const folds = stratifiedFolds(
    input.ids,
    input.labels,
    rows,
    options.folds ?? (large ? SPARSE_SUSPECT_FOLDS : DEFAULT_FOLDS),
  );
  const suspects: LabelSuspect[] = [];
  let photos = 0;
  for (const [f, fold] of folds.entries()) {
    await options.onFold?.({ done: f, total: folds.length });
    if (fold.validation.length === 0 || fold.train.length === 0) continue;
    // refitL2 is the strength for all n rows; a fold fits fewer, so the penalty's weight is kept the same way.
    const l2 = (options.config.refitL2 * n) / fold.train.length;
    const epochs = large
      ? Math.min(options.config.epochs, Math.max(1, Math.round(SPARSE_SUSPECT_STEPS / fold.train.length)))
      : options.config.epochs;
    const probs = fitConfiguration(input, {
      config: { ...options.config, epochs },
      l2,
      fit: fold.train,
      score: fold.validation,
      ...(options.trainOptions ? { options: options.trainOptions } : {}),
    });
    fold.validation.forEach((row, i) => {
      photos++;
      const label = Number(input.labels[row]);
      const suspected = argmaxRow(probs, i, k);
      if (suspected === label) return;
      suspects.push({
        row,
        label,
        suspected,
        confidence: probs[i * k + suspected]!,
        labelScore: probs[i * k + label]!,
      });
    });
  }
  suspects.sort((a, b) => a.labelScore - b.labelScore || b.confidence - a.confidence || a.row - b.row);
  return { suspects, folds: folds.length, photos, seconds: (performance.now() - started) / 1000 };
}
