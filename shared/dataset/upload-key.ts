import { layout } from '../layout/index.js';
import { UploadKeyError } from './dataset-errors.js';

/**
 * The upload convention: `uploads/<project>/<label>/<file>`. The folder name is the label, so
 * `aws s3 sync ./photos s3://BUCKET/uploads/shoes/` with one sub-folder per label is the whole API for data.
 *
 * - project: 1-63 of `a-z 0-9 -`, starting and ending with a letter or digit (it appears in URLs and keys).
 * - label: 1-64 characters of letters, digits (any script), space, `_ - . ( ) & + '`, starting with a letter or
 *   digit and not ending with a space. Compared in Unicode NFC, so a label typed on macOS (NFD file names) and on
 *   Linux is one label.
 * - file: 1-255 bytes, no control characters, not starting with `.` (hidden files such as `.DS_Store` are not photos).
 *
 * Anything else is refused with a reason; nothing is renamed to make it fit.
 */
export interface UploadKey {
  key: string;
  project: string;
  label: string;
  file: string;
}

export const PROJECT_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}\p{M} _.()&+'-]{0,63}$/u;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function isValidProject(name: string): boolean {
  return PROJECT_PATTERN.test(name);
}

export function checkProject(name: string): string {
  if (!isValidProject(name)) {
    throw new UploadKeyError(
      'invalid_project',
      `project name '${printable(name)}' is not allowed: use 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit`,
    );
  }
  return name;
}

export function checkLabel(raw: string): string {
  const label = raw.normalize('NFC');
  if (label === '.' || label === '..')
    throw new UploadKeyError('invalid_label', `label '${label}' is not allowed`);
  if (CONTROL.test(label)) throw new UploadKeyError('invalid_label', 'label contains control characters');
  if ([...label].length > 64) {
    throw new UploadKeyError(
      'invalid_label',
      `label '${printable(label).slice(0, 70)}…' is longer than 64 characters`,
    );
  }
  // Said apart: a trailing space is invisible in a folder listing, so "not allowed" alone sends people looking.
  if (label.endsWith(' ') && LABEL_PATTERN.test(label)) {
    throw new UploadKeyError(
      'invalid_label',
      `label '${printable(label)}' ends with a space: rename the folder to '${printable(label.trimEnd())}'`,
    );
  }
  if (!LABEL_PATTERN.test(label)) {
    throw new UploadKeyError(
      'invalid_label',
      `label '${printable(label)}' is not allowed: use letters, digits, space and _ - . ( ) & + ', starting with a letter or digit`,
    );
  }
  return label;
}

function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: made visible in messages, never echoed raw.
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function parseUploadKey(key: string): UploadKey {
  if (!key.startsWith(layout.uploadsPrefix)) {
    throw new UploadKeyError('not_an_upload', `key '${printable(key)}' is not under uploads/`);
  }
  const parts = key.slice(layout.uploadsPrefix.length).split('/');
  if (parts.length < 3) {
    throw new UploadKeyError(
      'key_too_shallow',
      `'${printable(key)}' is not uploads/<project>/<label>/<file>: put each photo in a folder named after its label`,
    );
  }
  if (parts.length > 3) {
    throw new UploadKeyError(
      'key_too_deep',
      `'${printable(key)}' has ${parts.length - 3} folder level(s) too many: labels are one folder deep, uploads/<project>/<label>/<file>`,
    );
  }
  const [project, label, file] = parts as [string, string, string];
  if (parts.some((p) => p === ''))
    throw new UploadKeyError('empty_segment', `'${printable(key)}' has an empty path segment`);
  checkProject(project);
  const nfcLabel = checkLabel(label);
  if (file === '.' || file === '..' || file.startsWith('.')) {
    throw new UploadKeyError('hidden_file', `'${printable(file)}' is a hidden file, not a photo`);
  }
  if (CONTROL.test(file))
    throw new UploadKeyError('invalid_file_name', 'file name contains control characters');
  if (new TextEncoder().encode(file).byteLength > 255) {
    throw new UploadKeyError('invalid_file_name', 'file name is longer than 255 bytes');
  }
  return { key, project, label: nfcLabel, file };
}

/**
 * The project of a key if it can be read at all, for filing a refused upload where the user will look for it.
 * Refused keys whose project is unreadable are filed under `_unsorted`.
 */
export function projectOf(key: string): string | undefined {
  const p = key.startsWith(layout.uploadsPrefix) ? key.split('/')[1] : undefined;
  return p && isValidProject(p) ? p : undefined;
}

/**
 * Keys as S3 puts them in event notifications: URL-encoded, with `+` for a space. `+` in a key arrives as `%2B`.
 */
export function decodeEventKey(raw: string): string {
  return decodeURIComponent(raw.replace(/\+/g, ' '));
}
