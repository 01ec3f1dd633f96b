import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CliError } from './cli-errors.js';

/** A file found under `<dir>/<label>/`, or a thing there that cannot be used, with the reason. */
export interface LabelledFile {
  /** The label folder's name; '' for a file directly in <dir>. */
  label: string;
  path: string;
  /** Bytes, from stat (links followed): oversized files are refused without reading them. */
  size: number;
  refusal?: { code: string; message: string };
}

type Entry =
  | { kind: 'file'; size: number }
  | { kind: 'dir'; id: string }
  | { kind: 'unreadable'; message: string };

/** Node's fs messages repeat their code and the path (`ENOENT: no such file or directory, stat '/x'`). */
export function fsReason(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  return message.replace(/^[A-Z][A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/s, '');
}

function inspect(path: string): Entry {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    if (!s) {
      // readdir listed it, so it is a symbolic link to nothing.
      let target = '';
      try {
        target = readlinkSync(path);
      } catch {}
      return {
        kind: 'unreadable',
        message: `broken symbolic link${target ? ` (its target ${target} does not exist)` : ''}`,
      };
    }
    if (s.isDirectory()) return { kind: 'dir', id: `${s.dev}:${s.ino}` };
    if (s.isFile()) return { kind: 'file', size: s.size };
    return { kind: 'unreadable', message: 'not a regular file (a device, socket or pipe)' };
  } catch (err) {
    return { kind: 'unreadable', message: `cannot be read: ${fsReason(err)}` };
  }
}

const unreadable = (label: string, path: string, message: string): LabelledFile => ({
  label,
  path,
  size: 0,
  refusal: { code: 'unreadable_file', message },
});

function list(path: string): string[] | string {
  try {
    return readdirSync(path).sort();
  } catch (err) {
    return `folder cannot be read: ${fsReason(err)}`;
  }
}

/**
 * Everything under a sub-folder of a label: refused, since labels are one folder deep. Links back up the tree
 * are followed once at most (`seen` holds the folders already walked).
 */
function walkTooDeep(label: string, labelDir: string, path: string, seen: Set<string>): LabelledFile[] {
  const names = list(path);
  if (typeof names === 'string') return [unreadable(label, path, names)];
  const out: LabelledFile[] = [];
  for (const name of names) {
    const p = join(path, name);
    const e = inspect(p);
    if (e.kind === 'unreadable') out.push(unreadable(label, p, e.message));
    else if (e.kind === 'dir') {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      out.push(...walkTooDeep(label, labelDir, p, seen));
    } else {
      const sub = relative(labelDir, path);
      out.push({
        label,
        path: p,
        size: e.size,
        refusal: {
          code: 'key_too_deep',
          message: `is in sub-folder '${sub}' of label '${label}': labels are one folder deep (<dir>/<label>/<file>); move it into '${label}' or into a label folder of its own`,
        },
      });
    }
  }
  return out;
}

function walkLabel(label: string, labelDir: string, seen: Set<string>): LabelledFile[] {
  const names = list(labelDir);
  if (typeof names === 'string') return [unreadable(label, labelDir, names)];
  const out: LabelledFile[] = [];
  for (const name of names) {
    const p = join(labelDir, name);
    const e = inspect(p);
    if (e.kind === 'file') out.push({ label, path: p, size: e.size });
    else if (e.kind === 'unreadable') out.push(unreadable(label, p, e.message));
    else if (!seen.has(e.id)) {
      seen.add(e.id);
      out.push(...walkTooDeep(label, labelDir, p, seen));
    }
  }
  return out;
}

/**
 * `<dir>/<label>/<file>`: sub-folders are labels. Files directly in <dir> come back with label ''; files deeper
 * than one folder, broken links and unreadable entries come back with a refusal, so none is skipped silently.
 */
export function listLabelledFiles(dir: string): LabelledFile[] {
  const names = list(dir);
  if (typeof names === 'string') throw new CliError(`${dir}: ${names}`);
  const root = inspect(dir);
  const out: LabelledFile[] = [];
  for (const name of names) {
    const p = join(dir, name);
    const e = inspect(p);
    if (e.kind === 'file') out.push({ label: '', path: p, size: e.size });
    else if (e.kind === 'unreadable') out.push(unreadable('', p, e.message));
    else out.push(...walkLabel(name, p, new Set(root.kind === 'dir' ? [root.id, e.id] : [e.id])));
  }
  return out;
}
