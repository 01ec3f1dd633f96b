import { z } from 'zod';
import { layout } from '../layout/index.js';
import { type ObjectStore, readJson } from '../store/index.js';

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
   * Serve the mean of the photo's and its mirror's probabilities (two backbone views per photo, one batch).
   * Recorded in each version the project trains (`manifest.serving.flip`), so it applies from the next training
   * and a rollback serves as it did. Off by default: see the README for its measured gain and latency.
   */
  predictFlip: z.boolean().default(false),
  /** Predictions of images the outlier detector calls unknown come back with no labels (see ?rejectUnknown). */
  rejectUnknown: z.boolean().default(false),
});
export type ProjectSettings = z.infer<typeof projectSettingsSchema>;

/** A project's settings, or the defaults when it has none. */
export async function readProjectSettings(store: ObjectStore, project: string): Promise<ProjectSettings> {
  return (
    (await readJson(store, layout.projectSettings(project), projectSettingsSchema)) ??
    projectSettingsSchema.parse({})
  );
}
