import {
  BackboneNotFoundError,
  calibrationPhotosDir,
  defaultBackboneId,
  loadBackbone,
  readBackbone,
} from '../../shared/backbone/index.js';
import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import { ensureBuiltInBackbone } from '../../shared/local/ensure-backbone.js';
import { type MigrationReport, migrateBackbone } from '../../shared/pipeline/migrate-backbone.js';
import { dualExtractorFromStore } from '../../shared/pipeline/trunk-deps.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import type { Target } from './cli-context.js';
import { CliError } from './cli-errors.js';
import { requestTraining } from './project-commands.js';

/**
 * `backbone migrate [--to ID] [--project P]`: re-extracts the photos under backbone ID (default: the code's
 * built-in default, built into the store if missing) and its trunk, resumably; without --project it then makes
 * ID the store's default and requests a retrain of each project that needs one.
 */
export async function migrateCommand(
  target: Target,
  options: { to?: string; project?: string; log: (line: string) => void },
): Promise<MigrationReport> {
  const { store } = target;
  await initTf();
  const id = options.to ?? defaultBackboneId();
  if (id === defaultBackboneId()) {
    await ensureBuiltInBackbone(store, { photosDir: calibrationPhotosDir(), log: options.log });
  }
  let pkg: Awaited<ReturnType<typeof readBackbone>>;
  try {
    pkg = await readBackbone(store, id);
  } catch (err) {
    if (!(err instanceof BackboneNotFoundError)) throw err;
    throw new CliError(
      `backbone '${id}' is not in ${store.description}: \`headstart backbone list\` shows the stored ones, \`headstart backbone import\` adds one`,
      { cause: err },
    );
  }
  const [backbone, dual] = await Promise.all([loadBackbone(pkg), dualExtractorFromStore(store, pkg)]);
  try {
    return await migrateBackbone(
      {
        store,
        index: createDatasetIndex(store),
        backbone,
        ...(dual ? { dual } : {}),
        requestRetrain: async (project) => {
          await requestTraining(target, project, { wait: false, force: false });
        },
        onProgress: options.log,
        maxPixels: target.env.HEADSTART_MAX_PIXELS,
      },
      { ...(options.project ? { projects: [options.project] } : {}), makeDefault: !options.project },
    );
  } finally {
    backbone.dispose();
    dual?.dispose();
  }
}

export function migrationText(r: MigrationReport, project: string | undefined): string {
  const lines = r.projects.map(
    (p) =>
      `${p.project}: ${p.photos} photos, extracted ${p.extracted}, already there ${p.alreadyThere}, failed ${p.failed.length}${p.retrainRequested ? '; retrain requested' : ''}`,
  );
  if (r.projects.length === 0) lines.push('no projects with photos');
  const failures = r.projects.flatMap((p) => p.failed.map((f) => `  ${f.key}: ${f.code}: ${f.message}`));
  lines.push(...failures);
  lines.push(
    r.madeDefault
      ? `${r.backbone} is now the default backbone; existing versions keep serving on their own backbone until retrained`
      : r.isDefault
        ? `${r.backbone} is the default backbone`
        : `${r.backbone} features of '${project}' are ready; run \`headstart backbone migrate --to ${r.backbone}\` without --project to make it the default`,
  );
  return lines.join('\n');
}
