import { describe, expect, it } from 'vitest';
import { lastOutcomeSchema, type RecordedOutcome, recordFailure, recordOutcome } from './train-outcome.js';
import { formatTrainOutcome } from './train-outcome-text.js';
import { trainingStateSchema } from './train-project.js';

const at = '2026-01-02T03:04:05.000Z';
const metrics = { accuracy: 0.9, macroF1: 0.85, n: 20 };

/** One outcome of every status a training state can record. */
const every: RecordedOutcome[] = [
  { status: 'too_early', project: 'p', retryInSeconds: 12, at },
  { status: 'busy', project: 'p', owner: 'trainer-1', at },
  { status: 'up_to_date', project: 'p', at },
  { status: 'unchanged', project: 'p', version: 'v1', mode: 'finetune', metrics, at },
  { status: 'unchanged', project: 'p', at },
  { status: 'refused', project: 'p', code: 'insufficient_examples', message: "label 'hat' has 2 photos", at },
  {
    status: 'promoted',
    project: 'p',
    version: 'v2',
    mode: 'head',
    reason: 'first version',
    metrics,
    seconds: 3.25,
    at,
  },
  {
    status: 'candidate',
    project: 'p',
    version: 'v3',
    mode: 'finetune',
    reason: 'below',
    metrics,
    seconds: 1,
    at,
  },
  { status: 'failed', message: 'the store went away', at },
  { status: 'interrupted', message: 'the stack stopped during the training', at },
  { status: 'unrecognized', reported: 'exploded', message: 'boom', at },
];

describe('recorded training outcomes', () => {
  it('reads back every status as it was written', () => {
    for (const o of every) expect(lastOutcomeSchema.parse(JSON.parse(JSON.stringify(o)))).toEqual(o);
  });

  it('reads a failed and an interrupted training as such', () => {
    const failed = recordFailure('failed', 'disk full', new Date(at));
    expect(lastOutcomeSchema.parse(failed)).toEqual({ status: 'failed', message: 'disk full', at });
    const state = trainingStateSchema.parse({
      project: 'p',
      state: 'idle',
      updatedAt: at,
      lastOutcome: { status: 'interrupted', message: 'stopped', at },
    });
    expect(state.lastOutcome).toEqual({ status: 'interrupted', message: 'stopped', at });
  });

  it('reads a state file whose outcome has a shape of its own as unrecognized, keeping its status and message', () => {
    const state = trainingStateSchema.parse({
      project: 'p',
      state: 'idle',
      updatedAt: at,
      lastOutcome: { status: 'promoted', version: 'v9', message: 'an older writer', at },
    });
    expect(state.lastOutcome).toEqual({
      status: 'unrecognized',
      reported: 'promoted',
      message: 'an older writer',
      at,
    });
    expect(lastOutcomeSchema.parse({ status: 'exploded', extra: 1 })).toEqual({
      status: 'unrecognized',
      reported: 'exploded',
    });
    expect(lastOutcomeSchema.parse('just text')).toEqual({ status: 'unrecognized', reported: 'unknown' });
  });

  it('reads a legacy unchanged outcome without its version', () => {
    expect(lastOutcomeSchema.parse({ status: 'unchanged', project: 'p', at })).toEqual({
      status: 'unchanged',
      project: 'p',
      at,
    });
  });

  it('stamps a run outcome with the time it was recorded', () => {
    expect(recordOutcome({ status: 'up_to_date', project: 'p' }, new Date(at))).toEqual({
      status: 'up_to_date',
      project: 'p',
      at,
    });
  });
});

describe('formatTrainOutcome', () => {
  it('writes one line for each status, naming what people need from it', () => {
    const lines = every.map(formatTrainOutcome);
    expect(lines).toEqual([
      'too early: the dataset changed less than the quiet window ago; retry in 12 s',
      'busy: trainer-1 is training p',
      'up to date: no training request is pending',
      'up to date: v1 (fine-tuned top) serves this dataset: validation accuracy 0.900, macro-F1 0.850 (n=20); `--force` retrains anyway',
      'dataset unchanged since the current version; `--force` retrains anyway',
      "refused: label 'hat' has 2 photos",
      'promoted v2 (head) in 3.3 s: validation accuracy 0.900, macro-F1 0.850 (n=20); first version',
      'candidate v3 (fine-tuned top) in 1.0 s: validation accuracy 0.900, macro-F1 0.850 (n=20); below',
      'failed: the store went away',
      'interrupted: the stack stopped during the training',
      'exploded: boom',
    ]);
    for (const line of lines) expect(line).not.toContain('\n');
  });
});
