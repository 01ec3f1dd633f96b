import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { DatasetError } from '../../shared/dataset/dataset-errors.js';
import { decodeTextUpload } from '../../shared/dataset/text-upload.js';
import { checkLabel, checkProject } from '../../shared/dataset/upload-key.js';
import { layout } from '../../shared/layout/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { parseCsv } from '../../shared/text/index.js';
import { CliError, UsageError } from './cli-errors.js';
import { fsReason } from './labelled-folder.js';
import type { UploadSummary } from './upload-command.js';

/** One row of a labelled table: where it came from (`data.csv:12`, counting the header as line 1), its text and label. */
export interface TableRow {
  at: string;
  text: string;
  label: string;
}

export interface TableColumns {
  textColumn?: string;
  labelColumn?: string;
}

/** `.csv`/`.jsonl` files are tables of labelled texts; anything else given to `upload` is a folder. */
export function isTextTable(path: string): boolean {
  return /\.(csv|jsonl)$/i.test(path);
}

const jsonRow = z.record(z.unknown());

/**
 * The rows of a CSV (header row naming the columns) or JSON Lines table. A row whose text or label is missing is
 * kept with an empty field, so the upload refuses it with its line number rather than skipping it silently.
 */
export function readTextTable(path: string, columns: TableColumns = {}): TableRow[] {
  const textColumn = columns.textColumn ?? 'text';
  const labelColumn = columns.labelColumn ?? 'label';
  let raw: string;
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  } catch (err) {
    throw new CliError(`${path} cannot be read as UTF-8 text: ${fsReason(err)}`);
  }
  const name = basename(path);
  if (/\.jsonl$/i.test(path)) {
    return raw.split(/\r?\n/).flatMap((line, i) => {
      if (line.trim() === '') return [];
      let obj: Record<string, unknown>;
      try {
        obj = jsonRow.parse(JSON.parse(line));
      } catch {
        throw new CliError(`${name}:${i + 1} is not a JSON object`);
      }
      return [
        {
          at: `${name}:${i + 1}`,
          text: String(obj[textColumn] ?? ''),
          label: String(obj[labelColumn] ?? ''),
        },
      ];
    });
  }
  const [header, ...rows] = parseCsv(raw);
  const ti = header?.indexOf(textColumn) ?? -1;
  const li = header?.indexOf(labelColumn) ?? -1;
  if (ti < 0 || li < 0) {
    throw new UsageError(
      `${name} has no '${ti < 0 ? textColumn : labelColumn}' column in its header (${(header ?? []).join(', ')}); name the columns with --text-column and --label-column`,
    );
  }
  return rows
    .map((r, i) => ({
      at: `${name}:${i + 2}`,
      text: r[ti] ?? '',
      label: r[li] ?? '',
      blank: r.length === 1 && r[0] === '',
    }))
    .filter((r) => !r.blank)
    .map(({ at, text, label }) => ({ at, text, label }));
}

/** The key of a row: named by its text's sha256, so the same text under the same label is one object. */
export function textRowKey(project: string, row: TableRow): { key: string; bytes: Uint8Array } {
  const label = checkLabel(row.label);
  const bytes = new TextEncoder().encode(row.text);
  decodeTextUpload(bytes);
  const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.txt`;
  return { key: layout.upload(project, label, name), bytes };
}

/**
 * Uploads a table of labelled texts as one `.txt` object per row under `uploads/<project>/<label>/`. Rows already
 * there with the same bytes are skipped; rows the stack would quarantine (empty, too long, bad label) are refused
 * here with their line.
 */
export async function uploadTextTable(options: {
  store: ObjectStore;
  project: string;
  path: string;
  columns?: TableColumns;
  progress?: (done: number, total: number) => void;
}): Promise<UploadSummary> {
  const { store, project } = options;
  checkProject(project);
  const rows = readTextTable(options.path, options.columns);
  if (rows.length === 0) throw new CliError(`${options.path} has no rows`);
  const summary: UploadSummary = { uploaded: [], skipped: [], refused: [] };
  let done = 0;
  const queue = [...rows];
  const worker = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) {
      try {
        const { key, bytes } = textRowKey(project, row);
        const md5 = `"${createHash('md5').update(bytes).digest('hex')}"`;
        if ((await store.head(key))?.etag === md5) summary.skipped.push(row.at);
        else {
          await store.put(key, bytes, { contentType: 'text/plain; charset=utf-8' });
          summary.uploaded.push(row.at);
        }
      } catch (err) {
        if (!(err instanceof DatasetError)) throw err;
        summary.refused.push({ file: row.at, code: err.code, message: err.message });
      }
      options.progress?.(++done, rows.length);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const byLine = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  summary.uploaded.sort(byLine);
  summary.skipped.sort(byLine);
  summary.refused.sort((a, b) => byLine(a.file, b.file));
  return summary;
}
