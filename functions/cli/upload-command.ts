import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatasetError } from '../../shared/dataset/dataset-errors.js';
import { checkProject, parseUploadKey } from '../../shared/dataset/upload-key.js';
import { decodeImage, ImageError } from '../../shared/image/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { CliError } from './cli-errors.js';

export interface UploadSummary {
  uploaded: string[];
  skipped: string[];
  refused: { file: string; code: string; message: string }[];
}

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

/** `<dir>/<label>/<file>`: sub-folders are labels. Files directly in <dir> have no label and are refused. */
export function listLabelledFiles(dir: string): { label: string; path: string }[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (cause) {
    throw new CliError(`cannot read ${dir}: ${(cause as Error).message}`, { cause });
  }
  const out: { label: string; path: string }[] = [];
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) {
        const fp = join(p, f);
        if (statSync(fp).isFile()) out.push({ label: name, path: fp });
      }
    } else {
      out.push({ label: '', path: p });
    }
  }
  return out;
}

function progress(done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`);
  if (done === total) process.stderr.write('\n');
}

/**
 * Uploads a labelled folder under `uploads/<project>/<label>/<file>`. Files already there with the same bytes
 * (the ETag is the MD5 of the body) are skipped; files that would be quarantined anyway (bad names, not
 * decodable images) are refused here with the same codes, so the user hears about them at once.
 */
export async function uploadDirectory(
  store: ObjectStore,
  project: string,
  dir: string,
): Promise<UploadSummary> {
  checkProject(project);
  const files = listLabelledFiles(dir);
  if (files.length === 0) throw new CliError(`${dir} has no files; put photos in one sub-folder per label`);
  const summary: UploadSummary = { uploaded: [], skipped: [], refused: [] };
  let done = 0;
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const { label, path } = f;
      try {
        if (!label)
          throw new DatasetError('no_label', 'file is not in a label folder (<dir>/<label>/<file>)');
        const key = parseUploadKey(`uploads/${project}/${label}/${basename(path)}`).key;
        const bytes = new Uint8Array(readFileSync(path));
        await decodeImage(bytes, { size: 32 });
        const md5 = `"${createHash('md5').update(bytes).digest('hex')}"`;
        const existing = await store.head(key);
        if (existing?.etag === md5) {
          summary.skipped.push(path);
        } else {
          const ext = path.split('.').pop()?.toLowerCase() ?? '';
          await store.put(key, bytes, { contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream' });
          summary.uploaded.push(path);
        }
      } catch (err) {
        if (err instanceof DatasetError || err instanceof ImageError) {
          summary.refused.push({ file: path, code: err.code, message: err.message });
        } else {
          throw err;
        }
      }
      progress(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return summary;
}
