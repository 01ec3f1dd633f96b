import { z } from 'zod';

/**
 * What one training run came to, as the trainer returns it and as the training state records it (`lastOutcome`,
 * read by `train --wait`, `status` and `start`'s log). One schema for both, so readers never guess its shape.
 */
const project = z.string();
const mode = z.enum(['head', 'finetune']);
const metrics = z.object({ accuracy: z.number(), macroF1: z.number(), n: z.number().int().nonnegative() });

const tooEarly = z.object({ status: z.literal('too_early'), project, retryInSeconds: z.number() });
const busy = z.object({ status: z.literal('busy'), project, owner: z.string() });
const upToDate = z.object({ status: z.literal('up_to_date'), project });
/**
 * The current version was trained on exactly this dataset: it is what serves it. States written before the
 * version was recorded here lack version, mode and metrics.
 */
const unchanged = z.object({
  status: z.literal('unchanged'),
  project,
  version: z.string().optional(),
  mode: mode.optional(),
  metrics: metrics.optional(),
});
const refused = z.object({ status: z.literal('refused'), project, code: z.string(), message: z.string() });
const trained = {
  project,
  version: z.string(),
  /** Whether the version is a head on pooled features or a fine-tuned top on the trunk's. */
  mode,
  reason: z.string(),
  metrics,
  seconds: z.number(),
};
const promoted = z.object({ status: z.literal('promoted'), ...trained });
const candidate = z.object({ status: z.literal('candidate'), ...trained });

export const trainOutcomeSchema = z.discriminatedUnion('status', [
  tooEarly,
  busy,
  upToDate,
  unchanged,
  refused,
  promoted,
  candidate,
]);
export type TrainOutcome = z.infer<typeof trainOutcomeSchema>;

const stamp = { at: z.string().optional() };

/** A recorded outcome: a run's, or a run that threw (`failed`) or whose stack stopped (`interrupted`). */
const recordedOutcomeSchema = z.discriminatedUnion('status', [
  tooEarly.extend(stamp),
  busy.extend(stamp),
  upToDate.extend(stamp),
  unchanged.extend(stamp),
  refused.extend(stamp),
  promoted.extend(stamp),
  candidate.extend(stamp),
  z.object({ status: z.literal('failed'), message: z.string(), ...stamp }),
  z.object({ status: z.literal('interrupted'), message: z.string(), ...stamp }),
  /** Whatever an older or newer writer recorded that this one does not know, kept as text. */
  z.object({
    status: z.literal('unrecognized'),
    reported: z.string(),
    message: z.string().optional(),
    ...stamp,
  }),
]);
export type RecordedOutcome = z.infer<typeof recordedOutcomeSchema>;

/**
 * `lastOutcome` of a training state. Never fails: a record of an unknown or older shape is kept as
 * 'unrecognized' with its status and message, so one odd state file does not hide the rest of the state.
 */
export const lastOutcomeSchema = z.unknown().transform((raw): RecordedOutcome => {
  const parsed = recordedOutcomeSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const o = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? undefined : JSON.stringify(v));
  const message = text(o.message);
  const at = typeof o.at === 'string' ? o.at : undefined;
  return {
    status: 'unrecognized',
    reported: text(o.status) ?? 'unknown',
    ...(message !== undefined ? { message } : {}),
    ...(at !== undefined ? { at } : {}),
  };
});

/** An outcome stamped with when it was recorded. */
export function recordOutcome(outcome: TrainOutcome, at: Date): RecordedOutcome {
  return { ...outcome, at: at.toISOString() };
}

/** A training that threw, or that was cut off by the stack stopping. */
export function recordFailure(status: 'failed' | 'interrupted', message: string, at: Date): RecordedOutcome {
  return { status, message, at: at.toISOString() };
}
