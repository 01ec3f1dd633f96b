import type { RecordedOutcome } from './train-outcome.js';

const modeText = (mode: 'head' | 'finetune' | undefined) => (mode === 'finetune' ? 'fine-tuned top' : 'head');
const scores = (m: { accuracy: number; macroF1: number; n: number }) =>
  `validation accuracy ${m.accuracy.toFixed(3)}, macro-F1 ${m.macroF1.toFixed(3)} (n=${m.n})`;

/** One line for people: what `train --wait` prints, what `start` logs and what `status` shows as the last run. */
export function formatTrainOutcome(o: RecordedOutcome): string {
  switch (o.status) {
    case 'promoted':
    case 'candidate':
      return `${o.status} ${o.version} (${modeText(o.mode)}) in ${o.seconds.toFixed(1)} s: ${scores(o.metrics)}; ${o.reason}`;
    case 'unchanged':
      // The request was consumed by a training that found the dataset already trained (often the automatic
      // retrain after the upload): the current version is the answer.
      return o.metrics && o.version
        ? `up to date: ${o.version} (${modeText(o.mode)}) serves this dataset: ${scores(o.metrics)}; \`--force\` retrains anyway`
        : 'dataset unchanged since the current version; `--force` retrains anyway';
    case 'refused':
      return `refused: ${o.message}`;
    case 'failed':
    case 'interrupted':
      return `${o.status}: ${o.message}`;
    case 'too_early':
      return `too early: the dataset changed less than the quiet window ago; retry in ${o.retryInSeconds} s`;
    case 'busy':
      return `busy: ${o.owner} is training ${o.project}`;
    case 'up_to_date':
      return 'up to date: no training request is pending';
    case 'unrecognized':
      return `${o.reported}${o.message ? `: ${o.message}` : ''}`;
  }
}
