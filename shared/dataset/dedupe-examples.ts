import type { Example } from './dataset-index.js';

/**
 * The one rule for photos uploaded more than once. A photo is its bytes (sha256), so it counts once whatever
 * the number of keys it sits under:
 *
 * - the same bytes under several keys of one label are a harmless duplicate: one example is kept (the first key
 *   in key order, so adding another copy does not change what trains), and the duplicate is reported;
 * - the same bytes under keys of different labels are a conflict: the most recent upload wins (so copying a
 *   photo into another label's folder relabels it, even while the old key stays), ties going to the first key
 *   in key order. Every key, its label and the winner are reported.
 *
 * The trainer trains on `examples`; `status` counts them; both report duplicates and conflicts.
 */
export interface DuplicateGroup {
  sha256: string;
  label: string;
  /** Every key holding these bytes, in key order. */
  keys: string[];
  /** The key whose example is kept. */
  kept: string;
}

export interface LabelConflict {
  sha256: string;
  /** Every key holding these bytes, with its label and upload time, in key order. */
  keys: { key: string; label: string; uploadedAt: string }[];
  winner: { key: string; label: string };
  rule: string;
}

export interface DedupedExamples {
  /** One example per photo, sorted by key. */
  examples: Example[];
  duplicates: DuplicateGroup[];
  conflicts: LabelConflict[];
  /** Keys that hold a photo counted under another key (duplicates and conflict losers). */
  extraKeys: number;
}

export const CONFLICT_RULE = 'the most recent upload wins; ties go to the first key in key order';

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function uploadTime(e: Example): number {
  const t = Date.parse(e.uploadedAt);
  return Number.isNaN(t) ? 0 : t;
}

/** The most recent upload; among equally recent ones, the first key (`group` is in key order). */
function mostRecent(group: readonly Example[]): Example {
  let best = group[0]!;
  for (const e of group) if (uploadTime(e) > uploadTime(best)) best = e;
  return best;
}

export function dedupeExamples(snapshot: readonly Example[]): DedupedExamples {
  const groups = new Map<string, Example[]>();
  for (const e of [...snapshot].sort(byKey)) {
    const g = groups.get(e.sha256);
    if (g) g.push(e);
    else groups.set(e.sha256, [e]);
  }
  const examples: Example[] = [];
  const duplicates: DuplicateGroup[] = [];
  const conflicts: LabelConflict[] = [];
  for (const [sha256, group] of groups) {
    if (group.length === 1) {
      examples.push(group[0]!);
      continue;
    }
    const labels = new Set(group.map((e) => e.label));
    if (labels.size === 1) {
      examples.push(group[0]!);
      duplicates.push({ sha256, label: group[0]!.label, keys: group.map((e) => e.key), kept: group[0]!.key });
      continue;
    }
    const winner = mostRecent(group);
    examples.push(winner);
    conflicts.push({
      sha256,
      keys: group.map((e) => ({ key: e.key, label: e.label, uploadedAt: e.uploadedAt })),
      winner: { key: winner.key, label: winner.label },
      rule: CONFLICT_RULE,
    });
  }
  return {
    examples: examples.sort(byKey),
    duplicates: duplicates.sort((a, b) => byKey({ key: a.kept }, { key: b.kept })),
    conflicts: conflicts.sort((a, b) => byKey({ key: a.winner.key }, { key: b.winner.key })),
    extraKeys: snapshot.length - examples.length,
  };
}
