import { areaError } from '../headstart-error.js';

/**
 * Every way training or loading a head can be refused. Callers branch on `code` (stable, machine-readable) and
 * show `message` to people, so messages say what to do about it.
 */
export class TrainingError extends areaError('TrainingError') {}

export class TooFewLabelsError extends TrainingError {
  readonly labelCount: number;

  constructor(labelCount: number, options?: { cause?: unknown }) {
    super(
      'too_few_labels',
      `a classifier needs at least 2 labels, got ${labelCount}; add photos of another label`,
      options,
    );
    this.name = 'TooFewLabelsError';
    this.labelCount = labelCount;
  }
}

export interface ShortLabel {
  label: string;
  count: number;
  /** How many more examples this label needs to reach the minimum. */
  needed: number;
}

export class InsufficientExamplesError extends TrainingError {
  readonly minPerLabel: number;
  readonly shortLabels: ShortLabel[];

  constructor(shortLabels: ShortLabel[], minPerLabel: number, options?: { cause?: unknown }) {
    const list = shortLabels.map((s) => `'${s.label}' has ${s.count} (needs ${s.needed} more)`).join(', ');
    super('insufficient_examples', `every label needs at least ${minPerLabel} examples: ${list}`, options);
    this.name = 'InsufficientExamplesError';
    this.minPerLabel = minPerLabel;
    this.shortLabels = shortLabels;
  }
}

/** The caller passed inconsistent arrays or options; a programming error rather than a data problem. */
export class InvalidTrainingInputError extends TrainingError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('invalid_training_input', `invalid training input: ${detail}`, options);
    this.name = 'InvalidTrainingInputError';
  }
}

export class InvalidHeadError extends TrainingError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('invalid_head', `invalid head: ${detail}`, options);
    this.name = 'InvalidHeadError';
  }
}
