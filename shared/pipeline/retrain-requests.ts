import { z } from 'zod';
import { compareSequencers, localSequencer } from '../dataset/sequencer.js';
import { layout } from '../layout/index.js';
import { type ObjectStore, PreconditionFailedError, readJson } from '../store/index.js';

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
  /** Set by `train --force`: train even if the dataset and the training-time settings did not change. */
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

const consumedSchema = z.object({ consumedSequence: z.string().optional() }).passthrough();

/**
 * The flags of a request not yet consumed that a new one must keep: an upload's request written while a person
 * waits on `train` would otherwise turn their immediate (or forced) training back into one that waits out the
 * quiet window.
 */
async function pendingFlags(
  store: ObjectStore,
  project: string,
  body: Uint8Array,
): Promise<Pick<RetrainRequest, 'force' | 'immediate'>> {
  const parsed = retrainRequestSchema.safeParse(parseOr(body));
  if (!parsed.success || (!parsed.data.force && !parsed.data.immediate)) return {};
  const state = await readJson(store, layout.trainingState(project), consumedSchema);
  const consumed = state?.consumedSequence;
  if (consumed && compareSequencers(consumed, parsed.data.sequence) >= 0) return {};
  return {
    ...(parsed.data.force ? { force: true } : {}),
    ...(parsed.data.immediate ? { immediate: true } : {}),
  };
}

function parseOr(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
}

/**
 * Records a retrain request: the latest time and sequence, keeping the `force` and `immediate` of a request
 * still pending. A compare-and-swap on the request's ETag, so a flag written meanwhile is never lost.
 */
export async function writeRetrainRequest(
  store: ObjectStore,
  project: string,
  options: { now?: Date; force?: boolean; immediate?: boolean } = {},
): Promise<RetrainRequest> {
  const key = layout.trainingRequest(project);
  for (let attempt = 0; ; attempt++) {
    const now = options.now ?? new Date();
    const found = await store.get(key);
    const kept = found ? await pendingFlags(store, project, found.body) : {};
    const req: RetrainRequest = {
      project,
      requestedAt: now.toISOString(),
      sequence: localSequencer(now.getTime()),
      ...(options.force || kept.force ? { force: true } : {}),
      ...(options.immediate || kept.immediate ? { immediate: true } : {}),
    };
    try {
      await store.put(key, JSON.stringify(req), {
        contentType: 'application/json',
        ...(found ? { ifMatch: found.etag } : { ifNoneMatch: '*' as const }),
      });
      return req;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError) || attempt >= 4) throw err;
    }
  }
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
