import { ServiceUnavailableError } from './http-errors.js';

export interface PredictGateOptions {
  /** Predictions computing at once. Decoding runs on libuv's pool while the backbone holds the JS thread, so 2 overlaps them. */
  maxConcurrent: number;
  /** Predictions waiting for a slot; beyond this requests are refused with 503 rather than queueing without bound. */
  maxQueue: number;
}

export interface PredictGate {
  run<T>(work: () => Promise<T>): Promise<T>;
  stats(): { active: number; queued: number };
}

/**
 * Bounds the work (and the decoded pixels and tensors) one instance holds at a time. Queued requests wait in
 * arrival order; a full queue answers 503 with Retry-After, which load balancers and clients understand.
 */
export function createPredictGate(options: PredictGateOptions): PredictGate {
  const maxConcurrent = Math.max(1, options.maxConcurrent);
  const waiting: (() => void)[] = [];
  let active = 0;

  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };

  return {
    async run(work) {
      if (active >= maxConcurrent) {
        if (waiting.length >= options.maxQueue) {
          throw new ServiceUnavailableError(
            'overloaded',
            `this instance is busy (${active} predictions running, ${waiting.length} queued); retry shortly`,
            { retryAfterSeconds: 1 },
          );
        }
        // The slot is handed over by `release` without decrementing `active`, so no newcomer can jump the queue.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        active++;
      }
      try {
        return await work();
      } finally {
        release();
      }
    },
    stats: () => ({ active, queued: waiting.length }),
  };
}
