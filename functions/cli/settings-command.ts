import {
  type ProjectSettings,
  projectSettingsSchema,
  readProjectSettings,
  reviewSettingsSchema,
  SETTINGS_READ_AT_TRAINING,
  updateProjectSettings,
} from '../../shared/pipeline/project-settings.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { UsageError } from './cli-errors.js';

export interface SettingsResult {
  project: string;
  settings: ProjectSettings;
  /** Keys set by this command, as given (`review.below`). */
  changed: string[];
}

/**
 * `headstart settings --project P [KEY=VALUE ...]`: shows a project's settings, or sets some. A value is read
 * as JSON when it parses (`true`, `0.3`, `["hflip"]`) and as a string otherwise (`trainingMode=head`);
 * `review.below=0.3` sets one field of a nested setting. The whole result is checked before anything is
 * written, so a bad value changes nothing.
 */
export async function settingsCommand(options: {
  store: ObjectStore;
  project: string;
  assignments: readonly string[];
}): Promise<SettingsResult> {
  const { store, project, assignments } = options;
  if (assignments.length === 0)
    return { project, settings: await readProjectSettings(store, project), changed: [] };
  const parsed = assignments.map(parseAssignment);
  const settings = await updateProjectSettings(store, project, (current) => {
    const patch = buildPatch(current, parsed);
    const checked = projectSettingsSchema.safeParse({ ...current, ...patch });
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new UsageError(`setting ${issue.path.join('.')}: ${issue.message}`);
    }
    return patch;
  });
  return { project, settings, changed: parsed.map((a) => a.path.join('.')) };
}

interface Assignment {
  path: string[];
  value: unknown;
}

function parseAssignment(text: string): Assignment {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`'${text}' is not KEY=VALUE (for example predictFlip=true)`);
  const path = text.slice(0, eq).split('.');
  const raw = text.slice(eq + 1);
  const top = projectSettingsSchema.shape;
  const [key, sub, ...more] = path;
  const known = Object.keys(top).join(', ');
  if (!key || !(key in top)) throw new UsageError(`unknown setting '${path.join('.')}'; settings: ${known}`);
  if (key === 'review' ? more.length > 0 || (sub !== undefined && !(sub in reviewSettingsSchema.shape)) : sub)
    throw new UsageError(
      `unknown setting '${path.join('.')}'${key === 'review' ? `; review has ${Object.keys(reviewSettingsSchema.shape).join(', ')}` : ''}`,
    );
  return { path, value: parseValue(raw) };
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function buildPatch(current: ProjectSettings, assignments: readonly Assignment[]): Partial<ProjectSettings> {
  const patch: Record<string, unknown> = {};
  for (const { path, value } of assignments) {
    const [key, sub] = path as [keyof ProjectSettings, string | undefined];
    if (sub === undefined) patch[key] = value;
    else patch[key] = { ...(current[key] as object), ...(patch[key] as object | undefined), [sub]: value };
  }
  return patch as Partial<ProjectSettings>;
}

export function formatSettings(r: SettingsResult): string {
  const lines = Object.entries(r.settings).map(([k, v]) => `${k.padEnd(15)}${JSON.stringify(v)}`);
  if (r.changed.length === 0) return lines.join('\n');
  const atTraining = (c: string) => SETTINGS_READ_AT_TRAINING.has(c.split('.')[0] as keyof ProjectSettings);
  const later = r.changed.filter(atTraining);
  const soon = r.changed.filter((c) => !atTraining(c));
  if (later.length)
    lines.push(
      // A version records the settings it was trained with, so `train` retrains an unchanged dataset after this.
      `${later.join(', ')}: used from the next training (\`headstart train --project ${r.project}\` trains now, with the photos unchanged)`,
    );
  if (soon.length) lines.push(`${soon.join(', ')}: the API reads it within 5 minutes`);
  return lines.join('\n');
}
