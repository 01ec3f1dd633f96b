import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DOWNSCALE_HINT } from '../../shared/backbone/index.js';
import { DatasetError, UploadTooLargeError } from '../../shared/dataset/dataset-errors.js';
import { checkProject, parseUploadKey } from '../../shared/dataset/upload-key.js';
import { layout } from '../../shared/layout/index.js';
import { megabytes, uploadPhoto } from '../../shared/pipeline/upload-photo.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { CliError } from './cli-errors.js';
import { fsReason, type LabelledFile, listLabelledFiles } from './labelled-folder.js';

export interface UploadSummary {
  uploaded: string[];
  skipped: string[];
  refused: { file: string; code: string; message: string }[];
}

export { megabytes };

/** A progress bar on stderr when it is a terminal. */
export function progress(done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`);
  if (done === total) process.stderr.write('\n');
}

export interface UploadOptions {
  store: ObjectStore;
  project: string;
  dir: string;
  /** Files over this are refused from their size alone (the stack would set them aside anyway). */
  maxUploadBytes: number;
}

/** The checks that need no store: each throws the DatasetError the stack would quarantine the file with. */
function checkFile(f: LabelledFile, options: UploadOptions): { key: string; bytes: Uint8Array } {
  if (f.refusal) throw new DatasetError(f.refusal.code, f.refusal.message);
  if (!f.label) throw new DatasetError('no_label', 'file is not in a label folder (<dir>/<label>/<file>)');
  const key = parseUploadKey(layout.upload(options.project, f.label, basename(f.path))).key;
  if (f.size > options.maxUploadBytes) {
    throw new UploadTooLargeError(
      `file is ${megabytes(f.size)} (${f.size} bytes), over the ${megabytes(options.maxUploadBytes)} upload limit (HEADSTART_MAX_UPLOAD_BYTES=${options.maxUploadBytes}); downscale it: ${DOWNSCALE_HINT}`,
    );
  }
  try {
    return { key, bytes: new Uint8Array(readFileSync(f.path)) };
  } catch (err) {
    throw new DatasetError('unreadable_file', `cannot be read: ${fsReason(err)}`);
  }
}

/**
 * Uploads a labelled folder under `uploads/<project>/<label>/<file>`. Files already there with the same bytes
 * (the ETag is the MD5 of the body) are skipped; files that would be quarantined anyway (bad names, too large,
 * not decodable images) and files that cannot be used at all (too deep, broken links) are refused here with
 * their reason, so the user hears about them at once.
 */
export async function uploadDirectory(options: UploadOptions): Promise<UploadSummary> {
  const { store, project, dir } = options;
  checkProject(project);
  const files = listLabelledFiles(dir);
  if (files.length === 0) throw new CliError(`${dir} has no files; put photos in one sub-folder per label`);
  const summary: UploadSummary = { uploaded: [], skipped: [], refused: [] };
  let done = 0;
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      try {
        const { bytes } = checkFile(f, options);
        const r = await uploadPhoto(store, {
          project,
          label: f.label,
          file: basename(f.path),
          bytes,
          maxUploadBytes: options.maxUploadBytes,
        });
        if (r.status === 'refused') summary.refused.push({ file: f.path, code: r.code, message: r.message });
        else summary[r.status === 'uploaded' ? 'uploaded' : 'skipped'].push(f.path);
      } catch (err) {
        if (!(err instanceof DatasetError)) throw err;
        summary.refused.push({ file: f.path, code: err.code, message: err.message });
      }
      progress(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  summary.refused.sort((a, b) => a.file.localeCompare(b.file));
  return summary;
}
