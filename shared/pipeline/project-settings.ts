import { z } from 'zod';
import type { Modality } from '../dataset/text-upload.js';
import { layout } from '../layout/index.js';
import type { VersionServing } from '../models/index.js';
import { type ObjectStore, PreconditionFailedError, parseJson, readJson } from '../store/index.js';
import { CLASS_WEIGHTINGS } from '../train/index.js';

/**
 * The review queue: the API keeps a copy of each photo it is unsure about, for a person to label. Off by
 * default, since it stores end users' photos (see the README's privacy note).
 */
export const reviewSettingsSchema = z.object({
  enabled: z.boolean().default(false),
  /** A photo whose top score is under this is kept (as is every photo the outlier detector calls unknown). */
  below: z.number().min(0).max(1).default(0.5),
  /** The share of all other photos kept at random, so the queue also shows what confident answers look like. */
  sample: z.number().min(0).max(1).default(0),
});
export type ReviewSettings = z.infer<typeof reviewSettingsSchema>;

/**
 * The top score under which `predictFlip: 'unsure'` also runs the mirror. On clothing-small's validation
 * (bench:flip) 0.6 scored as well as mirroring every photo while mirroring about an eighth of them, few enough
 * that the median request still costs what one view of the previous default backbone did.
 */
export const UNSURE_FLIP_BELOW = 0.6;

/**
 * The most of a version's validation photos the 'unsure' gate may mirror: a training lowers `flipBelow` for a
 * version whose head is unsure of more of them, so a harder dataset's median request still runs one view. At
 * the default gate clothing-small mirrored about 12%, its 32 px copy (100 per label) 24% (up to 31% by seed).
 */
export const MAX_FLIP_SHARE = 0.25;

/** `projects/<project>/settings.json`: what a project asks of extraction, training and serving. */
export const projectSettingsSchema = z.object({
  /**
   * Augmented views whose features are cached beside the plain one, used as extra examples of training photos.
   * The mirror (`hflip`) by default: on clothing-small it pays with flip-averaged prediction and costs one more
   * backbone pass per upload. `[]` turns it off, for photos a mirror changes the meaning of (text, left/right).
   */
  augmentations: z.array(z.enum(['hflip', 'crop-tl', 'crop-br'])).default(['hflip']),
  /**
   * 'auto' trains a head and, where the trunk's features are cached, also fine-tunes the top block, keeping
   * whichever scores better on validation; 'head' or 'finetune' force one. 'head' also skips caching the trunk's
   * (larger) features for the project's uploads.
   */
  trainingMode: z.enum(['auto', 'head', 'finetune']).default('auto'),
  /**
   * How training weighs labels with fewer photos: 'balanced' (the default) gives every label the same total
   * weight, which keeps rare labels' recall when the photos to classify are spread more evenly than the uploads;
   * 'none' weighs every photo alike, which scores higher where they are spread like the uploads (clothing-small,
   * 124 to 876 photos per label: 0.871 against 0.862 over 5 folds); 'sqrt' lies between (0.866). See the README.
   */
  classWeight: z.enum(CLASS_WEIGHTINGS).default('balanced'),
  /**
   * Serve the mean of the photo's and its mirror's probabilities: `true` for every photo (two backbone views
   * each), `'unsure'` (the default) only for photos whose single view's top score is under `flipBelow`, and
   * only in projects that train on mirrored views (`augmentations` has `hflip`: turning those off says a mirror
   * changes what a photo means), `false` never. Recorded in each version the project trains
   * (`manifest.serving`), so it applies from the next training and a rollback serves as it did. See the README
   * for the measured gain and latency.
   */
  predictFlip: z.union([z.boolean(), z.literal('unsure')]).default('unsure'),
  /** With `predictFlip: 'unsure'`: the top score under which a photo also runs mirrored (see UNSURE_FLIP_BELOW). */
  flipBelow: z.number().gt(0).lte(1).default(UNSURE_FLIP_BELOW),
  /** The most of the validation photos the gate may mirror; 1 never lowers `flipBelow` (see MAX_FLIP_SHARE). */
  maxFlipShare: z.number().min(0).max(1).default(MAX_FLIP_SHARE),
  /** Predictions of images the outlier detector calls unknown come back with no labels (see ?rejectUnknown). */
  rejectUnknown: z.boolean().default(false),
  review: reviewSettingsSchema.default({}),
  /**
   * Photos or texts. Fixed by the project's first accepted upload when not set here; an upload of the other
   * modality is quarantined with `modality_mismatch`.
   */
  modality: z.enum(['image', 'text']).optional(),
});
export type ProjectSettings = z.infer<typeof projectSettingsSchema>;

/** How a version trained under `settings` is to be served (its `manifest.serving`). */
export function servingOf(
  settings: Pick<ProjectSettings, 'predictFlip' | 'augmentations' | 'flipBelow'>,
): VersionServing {
  if (settings.predictFlip === true) return { flip: true };
  if (settings.predictFlip === 'unsure' && settings.augmentations.includes('hflip')) {
    return { flip: true, flipBelow: settings.flipBelow };
  }
  return { flip: false };
}

/** What a training did to the 'unsure' gate (evaluation.json's `flipGate`). */
export interface FlipGateReport {
  /** The project's `flipBelow`. */
  requestedBelow: number;
  /** The version's: the requested one, or lower where it would have mirrored more than `maxShare`. */
  flipBelow: number;
  maxShare: number;
  /** The share of the validation photos the version's gate mirrors; null without validation photos. */
  validationShare: number | null;
}

/**
 * The version's serving, its 'unsure' gate lowered where the requested `flipBelow` would mirror more than
 * `maxShare` of the validation photos (their class probabilities, `labels` per row, from the version's own
 * classifier): to the top score of the validation photo at that rank, so at most that share falls under it.
 */
export function gateOnValidation(
  serving: VersionServing,
  validation: { probs: Float32Array; labels: number; maxShare: number },
): { serving: VersionServing; report?: FlipGateReport } {
  const requested = serving.flipBelow;
  if (requested === undefined) return { serving };
  const { probs, labels, maxShare } = validation;
  const tops = Array.from({ length: probs.length / labels }, (_, r) =>
    Math.max(...probs.subarray(r * labels, (r + 1) * labels)),
  ).sort((a, b) => a - b);
  const rank = Math.floor(maxShare * tops.length);
  const flipBelow = rank < tops.length ? Math.min(requested, tops[rank]!) : requested;
  const share = tops.length > 0 ? tops.filter((t) => t < flipBelow).length / tops.length : null;
  return {
    serving: { flip: true, flipBelow },
    report: { requestedBelow: requested, flipBelow, maxShare, validationShare: share },
  };
}

/** Settings a training reads (recorded in the version it makes); the API reads the others within 5 minutes. */
export const SETTINGS_READ_AT_TRAINING: ReadonlySet<keyof ProjectSettings> = new Set([
  'augmentations',
  'trainingMode',
  'classWeight',
  'predictFlip',
  'flipBelow',
  'maxFlipShare',
]);

/** The values of the settings a training reads, as a version records them (`manifest.trainedWith`). */
export function trainingSettingsOf(settings: ProjectSettings): Record<string, unknown> {
  return Object.fromEntries([...SETTINGS_READ_AT_TRAINING].sort().map((key) => [key, settings[key]]));
}

/**
 * Whether a version recorded as trained with `recorded` would be trained the same under `settings` now. A version
 * that recorded none (written before versions did) counts as the same, so an upgrade retrains nothing by itself.
 */
export function trainedAsSettingsSay(
  recorded: Record<string, unknown> | undefined,
  settings: ProjectSettings,
): boolean {
  if (!recorded) return true;
  const now = trainingSettingsOf(settings);
  return Object.keys(now).every((key) => JSON.stringify(recorded[key]) === JSON.stringify(now[key]));
}

/**
 * The project's modality, fixing it to `wanted` when its settings name none (a compare-and-swap, so of two first
 * uploads of different modalities at once, one wins and the other is refused).
 */
export async function fixProjectModality(
  store: ObjectStore,
  project: string,
  wanted: Modality,
): Promise<ProjectSettings> {
  return updateProjectSettings(store, project, (current) => (current.modality ? {} : { modality: wanted }));
}

/** A project's settings, or the defaults when it has none. */
export async function readProjectSettings(store: ObjectStore, project: string): Promise<ProjectSettings> {
  return (
    (await readJson(store, layout.projectSettings(project), projectSettingsSchema)) ??
    projectSettingsSchema.parse({})
  );
}

/**
 * Sets some of a project's settings, leaving the rest of the file as written (so settings left to their
 * defaults keep following them). A compare-and-swap on the file's ETag: two changes at once both land.
 */
export async function updateProjectSettings(
  store: ObjectStore,
  project: string,
  patch: (current: ProjectSettings) => Partial<ProjectSettings>,
): Promise<ProjectSettings> {
  const key = layout.projectSettings(project);
  for (let attempt = 0; ; attempt++) {
    const found = await store.get(key);
    const raw = found ? parseJson(found.body, z.record(z.unknown())) : {};
    const next = { ...raw, ...patch(projectSettingsSchema.parse(raw)) };
    const parsed = projectSettingsSchema.parse(next);
    try {
      await store.put(key, `${JSON.stringify(next, null, 2)}\n`, {
        contentType: 'application/json',
        ...(found ? { ifMatch: found.etag } : { ifNoneMatch: '*' as const }),
      });
      return parsed;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError) || attempt >= 4) throw err;
    }
  }
}
