import { type ReviewSettings, updateProjectSettings } from '../../shared/pipeline/project-settings.js';
import {
  discardReviewItem,
  type LabelResult,
  labelReviewItem,
  listReviewItems,
  type ReviewListing,
} from '../../shared/review/index.js';
import { afterUploadLine, type Target } from './cli-context.js';
import { UsageError } from './cli-errors.js';

export interface ReviewCommandInput {
  target: Target;
  project: string;
  action: string | undefined;
  /** The positionals after the action: the item id of `label` and `discard`. */
  args: string[];
  values: Record<string, unknown>;
}

export interface ReviewCommandOutput {
  value: unknown;
  text: string;
}

/** A number in [0, 1] from `--name`, or `fallback` when not given. */
function fraction(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new UsageError(`--${name} must be a number from 0 to 1, not '${String(raw)}'`);
  }
  return n;
}

const settingsLine = (project: string, r: ReviewSettings) =>
  r.enabled
    ? `review queue of ${project} on: the API keeps photos (or texts) it calls unknown or scores below ${r.below}${r.sample > 0 ? `, and ${r.sample * 100}% of the others at random` : ''}, under review/${project}/ (each API instance notices within 5 minutes)`
    : `review queue of ${project} off: the API keeps no more photos or texts (items already queued stay until labelled, discarded or expired)`;

async function setReview(
  target: Target,
  project: string,
  review: (current: ReviewSettings) => ReviewSettings,
): Promise<ReviewCommandOutput> {
  const s = await updateProjectSettings(target.store, project, (current) => ({
    review: review(current.review),
  }));
  return { value: { project, review: s.review }, text: settingsLine(project, s.review) };
}

/** A text item on one line: white space folded, at most 60 characters, quoted. */
const excerpt = (text: string) => {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return JSON.stringify(chars.length > 60 ? `${chars.slice(0, 59).join('')}…` : chars.join(''));
};

const listText = (project: string, items: ReviewListing[], total: number) => {
  if (total === 0) return `no review items for ${project}`;
  const lines = items.map(
    (i) =>
      `${i.id.slice(0, 12)}  ${i.createdAt}  ${i.prediction.label} ${i.prediction.score.toFixed(3)}${i.unknown ? '  unknown' : ''}  (${i.reason}, ${i.version})${i.text === undefined ? '' : `  ${excerpt(i.text)}`}`,
  );
  if (items.length < total)
    lines.push(`(${items.length} of ${total} shown, oldest first; --limit N for more)`);
  return lines.join('\n');
};

const labelText = (target: Target, r: LabelResult) =>
  r.created
    ? `${r.id.slice(0, 12)} is now ${r.upload}\n${afterUploadLine(target)}`
    : `${r.id.slice(0, 12)} was already labelled ${r.label} (${r.upload}); nothing to do`;

function itemId(args: string[], usage: string): string {
  const id = args[0];
  if (!id) throw new UsageError(`review ${usage}`);
  return id;
}

/** `headstart review enable|disable|list|label|discard`. */
export async function reviewCommand(input: ReviewCommandInput): Promise<ReviewCommandOutput> {
  const { target, project, values, args } = input;
  switch (input.action) {
    case 'enable':
      // What enable is given, with the defaults for the rest: the same command always means the same queue.
      return setReview(target, project, () => ({
        enabled: true,
        below: fraction(values, 'below', 0.5),
        sample: fraction(values, 'sample', 0),
      }));
    case 'disable':
      return setReview(target, project, (r) => ({ ...r, enabled: false }));
    case 'list': {
      const limit = values.limit === undefined ? 100 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new UsageError('--limit must be a whole number, 1 or more');
      const { items, total } = await listReviewItems(target.store, project, { limit });
      return { value: items, text: listText(project, items, total) };
    }
    case 'label': {
      const id = itemId(args, 'label needs an item id: headstart review label --project P ID --as LABEL');
      if (typeof values.as !== 'string') throw new UsageError('review label needs --as LABEL');
      const r = await labelReviewItem(target.store, { project, id, label: values.as });
      return { value: r, text: labelText(target, r) };
    }
    case 'discard': {
      const id = itemId(args, 'discard needs an item id: headstart review discard --project P ID');
      const r = await discardReviewItem(target.store, { project, id });
      return { value: { discarded: r.id }, text: `discarded ${r.id.slice(0, 12)}` };
    }
    default:
      throw new UsageError('review needs enable, disable, list, label or discard');
  }
}
