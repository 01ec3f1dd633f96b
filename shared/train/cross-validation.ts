import { hashFraction, type Split } from './split.js';

/**
 * The one rule for how the head search scores its candidates: when the validation split has fewer than this many
 * examples of some label, candidates are scored by k-fold cross-validation of train + validation instead.
 *
 * Why 50: an accuracy over m validation examples of a label moves by 1/m per photo, so below ~50 per label one
 * split ranks neighbouring L2 strengths on a few photos (the small-data losses came from 20-per-label
 * splits). Cross-validation on cached features costs `folds` times the search, and small data is exactly where
 * that is cheap. bench/accuracy-bench.ts --study measures the effect.
 */
export const CROSS_VALIDATION_BELOW_PER_LABEL = 50;

/** Folds of the cross-validated search. */
export const DEFAULT_FOLDS = 5;

/** Whether the single split is too small to choose on, by the rule above. */
export function needsCrossValidation(
  validationCounts: readonly number[],
  below = CROSS_VALIDATION_BELOW_PER_LABEL,
): boolean {
  return validationCounts.some((c) => c < below);
}

/**
 * The photo an example shows: an id `<photo>.<view>` (how ProjectTrainer names an augmented view) is a view of
 * `<photo>` when `<photo>` is itself an example; any other id is its own photo.
 */
function photoOf(ids: readonly string[]): (i: number) => number {
  const index = new Map(ids.map((id, i) => [id, i]));
  return (i) => {
    const id = ids[i]!;
    const dot = id.indexOf('.');
    return dot > 0 ? (index.get(id.slice(0, dot)) ?? i) : i;
  };
}

/**
 * Stratified, deterministic folds over `rows` (indices into ids/labels). Each label's photos are ordered by
 * content hash (full id breaks ties) and dealt to the folds in turn, so fold membership depends only on the
 * photos, never on input order, and every fold holds each label's share to within one photo. A view of a photo
 * trains wherever its photo trains and never validates (it would leak its photo's answer).
 */
export function stratifiedFolds(
  ids: readonly string[],
  labels: ArrayLike<number>,
  rows: readonly number[],
  folds: number,
): Split[] {
  const photo = photoOf(ids);
  const byLabel = new Map<number, number[]>();
  const views = new Set<number>();
  for (const r of rows) {
    if (photo(r) !== r) {
      views.add(r);
      continue;
    }
    const members = byLabel.get(labels[r]!) ?? [];
    members.push(r);
    byLabel.set(labels[r]!, members);
  }
  const foldOf = new Map<number, number>();
  // Labels in ascending order, each continuing the deal where the last left off: fold sizes stay balanced too.
  let next = 0;
  for (const label of [...byLabel.keys()].sort((a, b) => a - b)) {
    const members = byLabel.get(label)!;
    members.sort((a, b) => hashFraction(ids[a]!) - hashFraction(ids[b]!) || (ids[a]! < ids[b]! ? -1 : 1));
    for (const r of members) foldOf.set(r, next++ % folds);
  }
  return Array.from({ length: folds }, (_, f) => {
    const split: Split = { train: [], validation: [] };
    for (const r of rows) {
      const home = foldOf.get(photo(r));
      if (home === undefined) continue;
      if (home !== f) split.train.push(r);
      else if (!views.has(r)) split.validation.push(r);
    }
    split.train.sort((a, b) => a - b);
    split.validation.sort((a, b) => a - b);
    return split;
  });
}
