import { z } from 'zod';
import { localSequencer } from '../dataset/sequencer.js';
import { layout } from '../layout/index.js';
import { type ObjectStore, readJson } from '../store/index.js';

/**
 * Asking for a retrain is two steps: record the time of the latest request in the store
 * (`training/<project>/request.json`, the debouncer's source of truth), then nudge whatever runs trainings (an SQS
 * message delayed by the quiet window in the cloud, a timer locally). The nudge carries no state, so duplicates,
 * losses covered by a later nudge, and reordering are all harmless.
 */
export const retrainRequestSchema = z.object({
  project: z.string(),
  requestedAt: z.string().datetime(),
  /** Increases with every request; the trainer records the last one it consumed. */
  sequence: z.string(),
  /** Set by `train --force` or a settings change: train even if the dataset did not change. */
  force: z.boolean().optional(),
  /** Set by `train` from the CLI: a person is waiting, so skip the quiet window. */
  immediate: z.boolean().optional(),
});
export type RetrainRequest = z.infer<typeof retrainRequestSchema>;

export interface RetrainTrigger {
  notify(project: string): Promise<void>;
}

export interface RetrainRequester {
  /** Remembers the project; nothing is written until flush. */
  request(project: string): Promise<void>;
  /** Writes one request per project seen since the last flush and nudges the trigger. */
  flush(): Promise<string[]>;
}

export async function writeRetrainRequest(
  store: ObjectStore,
  project: string,
  options: { now?: Date; force?: boolean; immediate?: boolean } = {},
): Promise<RetrainRequest> {
  const now = options.now ?? new Date();
  const req: RetrainRequest = {
    project,
    requestedAt: now.toISOString(),
    sequence: localSequencer(now.getTime()),
    ...(options.force ? { force: true } : {}),
    ...(options.immediate ? { immediate: true } : {}),
  };
  await store.put(layout.trainingRequest(project), JSON.stringify(req), { contentType: 'application/json' });
  return req;
}

export async function readRetrainRequest(
  store: ObjectStore,
  project: string,
): Promise<RetrainRequest | undefined> {
  return readJson(store, layout.trainingRequest(project), retrainRequestSchema);
}

class CoalescingRequester implements RetrainRequester {
  private readonly pending = new Set<string>();
  constructor(
    private readonly store: ObjectStore,
    private readonly trigger: RetrainTrigger,
    private readonly now: () => Date,
  ) {}

  async request(project: string): Promise<void> {
    this.pending.add(project);
  }

  async flush(): Promise<string[]> {
    const projects = [...this.pending];
    this.pending.clear();
    for (const p of projects) {
      await writeRetrainRequest(this.store, p, { now: this.now() });
      await this.trigger.notify(p);
    }
    return projects;
  }
}

export function createRetrainRequester(
  store: ObjectStore,
  trigger: RetrainTrigger,
  now: () => Date = () => new Date(),
): RetrainRequester {
  return new CoalescingRequester(store, trigger, now);
}
