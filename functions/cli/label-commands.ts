import type { SuspectList } from '../../shared/pipeline/upload-edits.js';

export function formatSuspects(list: SuspectList, project: string): string {
  if (!list.version) return `no training of ${project} has ranked label suspects yet`;
  const head = `${list.suspects.length} suspects from ${list.version} (${list.photos} photos checked${list.settled ? `, ${list.settled} settled since` : ''})`;
  const lines = list.suspects.map(
    (s) => `${s.key}  labelled ${s.label}, looks like ${s.suspectedLabel} (${s.confidence.toFixed(3)})`,
  );
  return [head, ...lines].join('\n');
}
