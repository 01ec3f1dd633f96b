import { z } from 'zod';
import { InvalidTrainingInputError } from './train-errors.js';

export interface SplitOptions {
  /** Share of each label sent to validation, in (0, 1). Default 0.2. */
  fraction?: number;
}

export interface Split {
  /** Indices into the input, ascending. */
  train: number[];
  validation: number[];
}

export const DEFAULT_VALIDATION_FRACTION = 0.2;

const hexId = z.string().regex(/^[0-9a-fA-F]{8}/, 'ids must start with 8 hex digits (sha256 hex)');
const optionsSchema = z.object({ fraction: z.number().gt(0).lt(1).default(DEFAULT_VALIDATION_FRACTION) });

/** Uniform in [0, 1) for a sha256 hex id: its first 32 bits. */
export function hashFraction(id: string): number {
  return Number.parseInt(hexId.parse(id).slice(0, 8), 16) / 2 ** 32;
}

/**
 * Stratified train/validation split that depends only on each example's own content hash, so adding photos
 * never moves existing ones: an example is in validation iff `hashFraction(id) < fraction`.
 *
 * One exception keeps tiny labels usable. A label with at least 2 examples always gets at least one on each
 * side: if none fell below the threshold, its lowest-hash example is moved to validation; if all did, its
 * highest-hash example (again the one nearest the threshold) is moved to train. Such a forced example can move
 * back when later additions make the guarantee hold on its own, or be replaced by a new example nearer the
 * threshold. A label with a single example always trains.
 */
export function splitByHash(
  ids: readonly string[],
  labels: ArrayLike<number>,
  options: SplitOptions = {},
): Split {
  const { fraction } = optionsSchema.parse(options);
  if (ids.length !== labels.length) {
    throw new InvalidTrainingInputError(`${ids.length} ids but ${labels.length} labels`);
  }
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < ids.length; i++) {
    const label = labels[i]!;
    let members = byLabel.get(label);
    if (!members) {
      members = [];
      byLabel.set(label, members);
    }
    members.push(i);
  }
  const h = ids.map((id) => hashFraction(id));
  // Full id as tie-break: two ids sharing their first 32 bits must still order the same way every time.
  const order = (a: number, b: number) =>
    h[a]! - h[b]! || (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0);

  const isValidation = new Array<boolean>(ids.length).fill(false);
  for (const members of byLabel.values()) {
    if (members.length < 2) continue;
    const sorted = [...members].sort(order);
    let inValidation = 0;
    for (const i of sorted) {
      if (h[i]! < fraction) {
        isValidation[i] = true;
        inValidation++;
      }
    }
    if (inValidation === 0) isValidation[sorted[0]!] = true;
    if (inValidation === sorted.length) isValidation[sorted[sorted.length - 1]!] = false;
  }
  const split: Split = { train: [], validation: [] };
  isValidation.forEach((v, i) => {
    (v ? split.validation : split.train).push(i);
  });
  return split;
}

/**
 * The split a caller chose by id: exactly the examples whose id is in `validationIds` validate (ids there that
 * are not in `ids` are ignored), the rest train. Indices ascending, as `splitByHash` gives them.
 */
export function splitByIds(ids: readonly string[], validationIds: readonly string[]): Split {
  const wanted = new Set(validationIds);
  const split: Split = { train: [], validation: [] };
  ids.forEach((id, i) => {
    (wanted.has(id) ? split.validation : split.train).push(i);
  });
  return split;
}
