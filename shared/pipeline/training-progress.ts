import { z } from 'zod';

/**
 * Where a running training is, written into the training state so `train --wait` (or anyone reading the state)
 * can show it. Optional everywhere: states written before it existed, and readers that do not know it, still work.
 */
export const trainingProgressSchema = z.object({
  /** 'loading features', 'head search', 'fine-tuning', 'label suspects', 'writing version'. */
  phase: z.string(),
  /** Steps of the phase done so far (candidates of the head search, epochs of fine-tuning) and their number. */
  step: z.number().int().nonnegative().optional(),
  of: z.number().int().positive().optional(),
  /** Seconds since the training started. */
  elapsedSeconds: z.number().nonnegative(),
  /** Estimated seconds left in this phase, from the pace of its steps so far; an upper bound for fine-tuning. */
  etaSeconds: z.number().nonnegative().optional(),
});
export type TrainingProgress = z.infer<typeof trainingProgressSchema>;

export interface ProgressReporter {
  /** Starts a phase of `of` steps (or of unknown length), and reports it. */
  phase(phase: string, of?: number): Promise<void>;
  /**
   * `step` steps of the current phase are done, of `of` (when only known once the phase runs); `maxSeconds`
   * caps the estimate of time left (a time budget).
   */
  step(step: number, options?: { of?: number; maxSeconds?: number }): Promise<void>;
  /** Waits for any write under way, so nothing lands after the final state. */
  settle(): Promise<void>;
}

/**
 * Reports progress through `write`, at most once every `intervalMs` (default 2 s): the training state is one
 * object every poller reads, and a write per epoch of a fast training would be most of its cost. A report
 * that comes too soon is dropped; the next one carries the news.
 */
export function createProgressReporter(options: {
  write: (progress: TrainingProgress) => Promise<void>;
  intervalMs?: number;
  clock?: () => number;
}): ProgressReporter {
  const clock = options.clock ?? (() => performance.now());
  const interval = options.intervalMs ?? 2000;
  const started = clock();
  let phase = 'starting';
  let of: number | undefined;
  let phaseStarted = started;
  let lastWrite = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> = Promise.resolve();

  const report = async (p: Omit<TrainingProgress, 'elapsedSeconds'>, force: boolean) => {
    const now = clock();
    if (!force && now - lastWrite < interval) return;
    lastWrite = now;
    const progress: TrainingProgress = { ...p, elapsedSeconds: round((now - started) / 1000) };
    // Progress is a courtesy: a failed write must never fail the training.
    pending = pending.then(() => options.write(progress).catch(() => {}));
    await pending;
  };

  return {
    async phase(name, steps) {
      phase = name;
      of = steps;
      phaseStarted = clock();
      await report({ phase, ...(of ? { step: 0, of } : {}) }, false);
    },
    async step(step, opts = {}) {
      if (opts.of) of = opts.of;
      const spent = (clock() - phaseStarted) / 1000;
      let eta: number | undefined;
      if (of && step > 0) {
        eta = (spent / step) * Math.max(0, of - step);
        if (opts.maxSeconds !== undefined) eta = Math.min(eta, Math.max(0, opts.maxSeconds - spent));
      }
      await report(
        { phase, step, ...(of ? { of } : {}), ...(eta !== undefined ? { etaSeconds: round(eta) } : {}) },
        false,
      );
    },
    settle: () => pending,
  };
}

function round(s: number): number {
  return Math.round(s * 10) / 10;
}

/** One line for people: `fine-tuning: epoch 3 of 40, 12 s elapsed, about 1 min left`. */
export function formatProgress(p: TrainingProgress): string {
  const units: Record<string, string> = {
    'fine-tuning': 'epoch',
    'head search': 'candidate',
    'label suspects': 'fold',
  };
  const unit = units[p.phase] ?? 'step';
  const parts = [p.step !== undefined && p.of ? `${unit} ${p.step} of ${p.of}` : undefined];
  parts.push(`${duration(p.elapsedSeconds)} elapsed`);
  if (p.etaSeconds !== undefined) parts.push(`about ${duration(p.etaSeconds)} left`);
  return `${p.phase}: ${parts.filter(Boolean).join(', ')}`;
}

function duration(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.round(s / 60)} min`;
}
