// The `headstart` command: drives a local Headstart (`--home`) or a deployed stack (`--bucket`/`--outputs`).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createKey, listKeys, revokeKey } from '../../shared/auth/index.js';
import {
  type BackboneManifest,
  listBackbones,
  readBackboneManifest,
  readDefaultBackboneId,
} from '../../shared/backbone/index.js';
import { checkProject } from '../../shared/dataset/upload-key.js';
import { codeOf, HeadstartError, messageOf } from '../../shared/headstart-error.js';
import { listModels, projectStatus, rollbackTo } from '../../shared/pipeline/project-status.js';
import { formatTrainOutcome } from '../../shared/pipeline/train-outcome-text.js';
import { listSuspects, relabelUpload, removeUpload } from '../../shared/pipeline/upload-edits.js';
import {
  afterUploadLine,
  checkTrainingRunner,
  resolveTarget,
  type Target,
  targetHelp,
  targetOptions,
} from './cli-context.js';
import { CliError, UsageError } from './cli-errors.js';
import { evaluateDirectory, formatEval } from './eval-command.js';
import { formatSuspects } from './label-commands.js';
import { type PredictResult, predictFiles } from './predict-commands.js';
import { formatStatus, requestTraining } from './project-commands.js';
import { evaluateTable, formatTextPredictions, predictTexts } from './text-commands.js';
import { progress, uploadDirectory } from './upload-command.js';
import { isTextTable, uploadTextTable } from './upload-table.js';

const HELP: Record<string, string> = {
  '': `headstart: image classifiers from a few hundred labelled photos, on your machine or your AWS account.

Usage: headstart <command> [options]    (run \`headstart <command> --help\` for each)

  start                         run Headstart locally (store, extraction, training, API on http://127.0.0.1:8787)
  upload <dir> --project P      upload <dir>/<label>/<photo> files (or data.csv/.jsonl of texts)
  train --project P [--wait]    train now (and wait for the result)
  status --project P [--json]   examples per label, quarantined uploads, training state, current model
  predict --project P <image...> [--json]   (a text project: --text "..." [--text ...])
  eval --project P <dir> [--json]  score the current model on a labelled folder (not added to training),
                                   or on data.csv/.jsonl for a text project
  suspects --project P [--json]  photos whose label the last training doubts, most suspect first [--limit N]
  relabel --project P KEY --as LABEL  move an upload to another label
  remove --project P KEY        delete an upload
  models --project P            list versions;  rollback --project P --to V
  review enable|disable|list|label|discard --project P   photos the API was unsure about, to label
  settings --project P [KEY=VALUE ...]  show or change a project's settings
  keys create|list|revoke --project P
  dashboard [--port N]          the dashboard on http://127.0.0.1:8788/ui/ over a home or a deployed bucket
  backbone list|import|migrate

${targetHelp}`,
  start: `headstart start: run Headstart locally on its embedded default.

Uses the file-system store under $HEADSTART_HOME (default ./.headstart), or S3 with $HEADSTART_BUCKET and
$S3_ENDPOINT; serves the API on $HOST:$PORT (default 127.0.0.1:8787). Ctrl-C stops it; nothing is lost.`,
  upload: `headstart upload <dir> --project P: upload a labelled folder.

<dir> holds one sub-folder per label, each with photos (JPEG, PNG, WebP); labels are one folder deep. Files
already uploaded with the same bytes are skipped. Refused with a reason, and never uploaded: files that are not
decodable images, bad names, files over $HEADSTART_MAX_UPLOAD_BYTES (20 MB), files in a sub-folder of a label
(key_too_deep), broken links and other unreadable entries (unreadable_file).
\`headstart upload data.csv --project P\` uploads a table of labelled texts instead (a header row naming columns
\`text\` and \`label\`, or \`.jsonl\` with those fields): one uploads/P/<label>/<sha256>.txt object per row, rows
already there skipped, empty rows and texts over 10,000 characters refused with their line.
Options: --json, --text-column NAME, --label-column NAME\n${targetHelp}`,
  train: `headstart train --project P [--wait] [--force]: request a training now.

--wait blocks until it finishes and prints the result; --force trains even if the dataset and settings did not
change and promotes the result even if it scores below the current version.\n${targetHelp}`,
  status: `headstart status --project P [--json]: what Headstart knows about a project.\n${targetHelp}`,
  predict: `headstart predict --project P <image...> [--top-k N] [--json]: classify images through the API.

Each image gets its predictions (stdout) or its error (stderr, with the file name); the exit code is 1 if any
failed. For a text project: \`headstart predict --project P --text "..."\` (--text repeated for several).\n${targetHelp}`,
  eval: `headstart eval --project P <dir> [--json]: score the current model on <dir>/<label>/<photo> files.

The photos go through the prediction API and are never added to training data. macro-F1 averages the labels
that have photos in <dir>; the model's other labels are listed. Photos the API refuses are listed with their
error and the rest are still scored; the exit code is 1 if any failed.
For a text project: \`headstart eval --project P data.csv\` (or .jsonl; columns as for upload: --text-column,
--label-column) scores the rows, named by file and line.\n${targetHelp}`,
  suspects: `headstart suspects --project P [--limit N] [--json]: photos whose given label looks wrong.

After each training, every photo is predicted by heads trained without it (cross-validation on the cached
features); the photos predicted as another label are listed, most suspect first, with that label and its
probability (confidence). From the newest version; suspects relabelled or removed since are left out. Fix one
with \`relabel\` or \`remove\`.
${targetHelp}`,
  relabel: `headstart relabel --project P KEY --as LABEL: move an upload to another label.

KEY is the upload's key (uploads/P/<label>/<file>, as \`suspects\` lists it) or <label>/<file>. The bytes are
written under the new label and the old key deleted, so the project retrains as after any upload. Relabelling to
the label it has changes nothing.
${targetHelp}`,
  remove: `headstart remove --project P KEY: delete an upload (uploads/P/<label>/<file> or <label>/<file>).

The photo leaves the dataset and the project retrains as after any upload.
${targetHelp}`,
  models: `headstart models --project P [--json]: list versions, their validation scores and promotion decisions.\n${targetHelp}`,
  rollback: `headstart rollback --project P --to VERSION: make an earlier version current (one pointer flip).\n${targetHelp}`,
  keys: `headstart keys create|list|revoke --project P [--name NOTE] [--id KEY_ID]: manage API keys.

Keys are stored only as hashes; \`create\` prints the key once.\n${targetHelp}`,
  dashboard: `headstart dashboard [--port N]: the dashboard (data, model, mistakes, suspects, review, keys) in your browser.

Serves the pages \`npm start\` shows under /ui/ on http://127.0.0.1:<port>/ui/ (default 8788; 0 picks a free
port), over the store the options name: a local home, or a deployed stack's bucket (--outputs or --bucket) with
your own AWS credentials, which never leave this process. Only 127.0.0.1 can reach it; Ctrl-C stops it.
${targetHelp}`,
  review: `headstart review enable|disable|list|label|discard --project P: the review queue.

enable [--below SCORE] [--sample RATE]: the API keeps a copy of each photo it calls unknown or whose top score
is under SCORE (default 0.5), and RATE (default 0) of the others at random, with its prediction, under
review/<project>/ (deployed: expired after 30 days). Off by default, for privacy: these are your end users'
photos (see the README's privacy note).
disable: keeps no more (the queue stays until labelled, discarded or expired).
list [--limit N] [--json]: queued items, oldest first: id, prediction, unknown, outlierScore, createdAt, version.
label ID --as LABEL: the photo becomes uploads/<project>/<LABEL>/review-<id>.<ext> and trains like any upload;
labelling it again is a no-op. discard ID: removes it. ID may be the first 6 or more characters.
${targetHelp}`,
  settings: `headstart settings --project P [KEY=VALUE ...] [--json]: show or change a project's settings.

Without KEY=VALUE, prints them (defaults included). A value is JSON when it parses (true, 0.3, ["hflip"]), else
text: predictFlip=true (or false, or unsure), flipBelow=0.7, maxFlipShare=0.4, trainingMode=head,
classWeight=none (or sqrt, or balanced), augmentations='[]', rejectUnknown=true, review.below=0.3. Everything is
checked before anything is written; augmentations, trainingMode, classWeight, predictFlip, flipBelow and
maxFlipShare apply from the next training,
rejectUnknown and review within 5 minutes at the API.
${targetHelp}`,
  backbone: `headstart backbone list | import <model.json> --id ID --cut LAYER [--photos DIR] | migrate [--to ID] [--project P]

list: backbones in the store. import: a tfjs layers model exported to the edge format (cut at LAYER, batch norm
folded, per-channel int8), refused if its features stray from the source's on real photos (--photos, default
the bundled samples). --scale/--offset give its input normalization (default 1/255 and 0).
migrate: re-extracts every indexed photo under backbone ID (default: this release's built-in default, built into
the store if missing) and its fine-tuning trunk, skipping photos already extracted (a second run does nothing);
failures are listed and the rest go on. Without --project it then makes ID the store's default backbone and
requests a retrain of each project; existing versions keep serving on the backbone they name.\n${targetHelp}`,
};

function out(json: boolean, value: unknown, text: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text());
}

function requireProject(values: Record<string, unknown>): string {
  const p = values.project;
  if (typeof p !== 'string' || !p) throw new UsageError('--project is required');
  try {
    return checkProject(p);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Commands that only talk to the API: they neither read nor create a store. */
const API_ONLY = new Set(['predict', 'eval']);

function predictText(res: PredictResult[]): string {
  return res
    .flatMap((r) =>
      'error' in r
        ? []
        : [
            `${r.file}: ${r.unknown ? 'unknown' : ''}${r.unknown && r.predictions.length ? ' (closest: ' : ''}${r.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')}${r.unknown && r.predictions.length ? ')' : ''}`,
          ],
    )
    .join('\n');
}

/** Files that failed go to stderr, one line each, then a count; the exit code says that some failed. */
function reportFailures(
  failed: { file: string; code: string; message: string }[],
  total: number,
  what: string,
) {
  if (failed.length === 0) return;
  for (const f of failed) console.error(`headstart: ${f.file}: ${f.code}: ${f.message}`);
  console.error(`headstart: ${failed.length} of ${total} images ${what}`);
  process.exitCode = 1;
}

function backboneText(rows: (BackboneManifest & { default: boolean })[]): string {
  if (rows.length === 0) return 'no backbones';
  const lines = rows.map(
    (m) =>
      `${m.default ? '*' : ' '} ${m.id}  ${m.format} ${m.quantization} ${m.inputSize}px -> ${m.feature.dim}-d at ${m.feature.layer}  ${m.weightsBytes} bytes`,
  );
  if (rows.some((m) => m.default)) lines.push('(* the default backbone)');
  return lines.join('\n');
}

async function run(argv: string[]): Promise<void> {
  const [command = '', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === '' || command === 'help') {
    console.log(HELP['']);
    return;
  }
  if (!(command in HELP))
    throw new UsageError(`unknown command '${command}'; \`headstart --help\` lists them`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        ...targetOptions,
        project: { type: 'string', short: 'p' },
        wait: { type: 'boolean' },
        force: { type: 'boolean' },
        to: { type: 'string' },
        name: { type: 'string' },
        id: { type: 'string' },
        'top-k': { type: 'string' },
        as: { type: 'string' },
        limit: { type: 'string' },
        cut: { type: 'string' },
        photos: { type: 'string' },
        scale: { type: 'string' },
        offset: { type: 'string' },
        below: { type: 'string' },
        sample: { type: 'string' },
        port: { type: 'string' },
        'text-column': { type: 'string' },
        'label-column': { type: 'string' },
        text: { type: 'string', multiple: true },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP[command]);
    return;
  }
  const json = values.json === true;
  if (command === 'start') {
    const { startCommand } = await import('./start-command.js');
    await startCommand();
    return;
  }
  // A missing or bad --project is a usage error before anything else is looked at.
  if (command !== 'backbone' && command !== 'dashboard') requireProject(values);
  const target: Target = resolveTarget(values, process.env, {
    requireStore: command !== 'upload' && !API_ONLY.has(command),
  });
  if (command === 'train') {
    const note = checkTrainingRunner(target, { wait: values.wait === true });
    if (note) console.error(`headstart: ${note}`);
  }
  switch (command) {
    case 'dashboard': {
      const { dashboardPort, startDashboard } = await import('./dashboard-command.js');
      const d = await startDashboard(target, { port: dashboardPort(values.port) });
      console.log(`dashboard of ${target.store.description}: ${d.url}  (Ctrl-C stops it)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await d.close();
      return;
    }
    case 'upload': {
      const project = requireProject(values);
      const dir = positionals[0];
      if (!dir) throw new UsageError('upload needs a directory: headstart upload <dir> --project P');
      const s = isTextTable(dir)
        ? await uploadTextTable({
            store: target.store,
            project,
            path: resolve(dir),
            columns: {
              ...(typeof values['text-column'] === 'string' ? { textColumn: values['text-column'] } : {}),
              ...(typeof values['label-column'] === 'string' ? { labelColumn: values['label-column'] } : {}),
            },
            progress,
          })
        : await uploadDirectory({
            store: target.store,
            project,
            dir: resolve(dir),
            maxUploadBytes: target.env.HEADSTART_MAX_UPLOAD_BYTES,
          });
      out(json, s, () =>
        [
          `uploaded ${s.uploaded.length}, already there ${s.skipped.length}, refused ${s.refused.length}`,
          ...s.refused.map((r) => `  refused ${r.file}: ${r.code}: ${r.message}`),
          afterUploadLine(target),
        ].join('\n'),
      );
      return;
    }
    case 'train': {
      const project = requireProject(values);
      const outcome = await requestTraining(target, project, {
        wait: values.wait === true,
        force: values.force === true,
        ...(json ? {} : { onProgress: (p) => console.error(`  ${p.line}`) }),
      });
      if (!values.wait) {
        out(json, { requested: true }, () => `training of ${project} requested`);
        return;
      }
      out(json, outcome, () =>
        outcome ? formatTrainOutcome(outcome) : `training of ${project} finished with no outcome recorded`,
      );
      if (outcome?.status === 'refused' || outcome?.status === 'failed') process.exitCode = 1;
      return;
    }
    case 'status': {
      const s = await projectStatus(target.store, requireProject(values));
      out(json, s, () => formatStatus(s));
      return;
    }
    case 'predict': {
      const project = requireProject(values);
      const texts = [values.text ?? []].flat().filter((t): t is string => typeof t === 'string');
      if (positionals.length === 0 && texts.length === 0)
        throw new UsageError('predict needs at least one image file, or --text "..." for a text project');
      if (positionals.length > 0 && texts.length > 0)
        throw new UsageError(
          'predict takes image files or --text, not both: a project holds one or the other',
        );
      const topK = values['top-k'] ? Number(values['top-k']) : 3;
      if (!Number.isInteger(topK) || topK < 1)
        throw new UsageError('--top-k must be a whole number, 1 or more');
      if (texts.length > 0) {
        const res = await predictTexts({ target, project, texts, topK });
        out(json, res, () => formatTextPredictions(res));
        return;
      }
      const res = await predictFiles({ target, project, files: positionals, topK });
      const text = predictText(res);
      if (json || text) out(json, res, () => text);
      reportFailures(
        res.flatMap((r) => ('error' in r ? [{ file: r.file, ...r.error }] : [])),
        res.length,
        'failed',
      );
      return;
    }
    case 'eval': {
      const project = requireProject(values);
      const dir = positionals[0];
      if (!dir) throw new UsageError('eval needs a directory: headstart eval --project P <dir>');
      const table = isTextTable(dir);
      const r = table
        ? await evaluateTable({
            target,
            project,
            path: resolve(dir),
            columns: {
              ...(typeof values['text-column'] === 'string' ? { textColumn: values['text-column'] } : {}),
              ...(typeof values['label-column'] === 'string' ? { labelColumn: values['label-column'] } : {}),
            },
          })
        : await evaluateDirectory({ target, project, dir: resolve(dir) });
      out(json, r, () => (table ? formatEval(r, process.cwd(), 'texts') : formatEval(r, resolve(dir))));
      if (r.failed.length) {
        console.error(
          `headstart: ${r.failed.length} of ${r.n + r.failed.length} ${table ? 'rows' : 'images'} could not be scored`,
        );
        process.exitCode = 1;
      }
      return;
    }
    case 'suspects': {
      const project = requireProject(values);
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
        throw new UsageError('--limit must be a whole number, 1 or more');
      const list = await listSuspects(target.store, project, limit === undefined ? {} : { limit });
      out(json, list.suspects, () => formatSuspects(list, project));
      return;
    }
    case 'relabel': {
      const project = requireProject(values);
      const key = positionals[0];
      if (!key || typeof values.as !== 'string' || positionals.length > 1)
        throw new UsageError(
          'relabel needs one upload and a label: headstart relabel --project P KEY --as LABEL',
        );
      const r = await relabelUpload(target.store, { project, key, label: values.as });
      out(json, r, () =>
        r.changed
          ? `moved ${r.from} to ${r.to}\n${afterUploadLine(target)}`
          : `${r.from} is already labelled ${values.as}; nothing changed`,
      );
      return;
    }
    case 'remove': {
      const project = requireProject(values);
      const key = positionals[0];
      if (!key || positionals.length > 1)
        throw new UsageError('remove needs one upload: headstart remove --project P KEY');
      const r = await removeUpload(target.store, { project, key });
      out(json, r, () => `removed ${r.removed}\n${afterUploadLine(target)}`);
      return;
    }
    case 'models': {
      const rows = await listModels(target.store, requireProject(values));
      out(json, rows, () =>
        rows.length === 0
          ? 'no versions yet'
          : rows
              .map(
                (r) =>
                  `${r.current ? '*' : ' '} ${r.version}  ${r.createdAt}  accuracy ${r.accuracy.toFixed(3)}  macro-F1 ${r.macroF1.toFixed(3)}  ${r.mode ?? ''}  ${r.decision ?? ''}${r.reason ? ` (${r.reason})` : ''}`,
              )
              .join('\n'),
      );
      return;
    }
    case 'rollback': {
      const project = requireProject(values);
      if (typeof values.to !== 'string') throw new UsageError('rollback needs --to VERSION');
      const v = await rollbackTo(target.store, project, values.to);
      out(json, { project, version: v }, () => `${project} now serves ${v}`);
      return;
    }
    case 'settings': {
      const { settingsCommand, formatSettings } = await import('./settings-command.js');
      const r = await settingsCommand({
        store: target.store,
        project: requireProject(values),
        assignments: positionals,
      });
      out(json, r, () => formatSettings(r));
      return;
    }
    case 'review': {
      const { reviewCommand } = await import('./review-commands.js');
      const r = await reviewCommand({
        target,
        project: requireProject(values),
        action: positionals[0],
        args: positionals.slice(1),
        values,
      });
      out(json, r.value, () => r.text);
      return;
    }
    case 'keys': {
      const action = positionals[0];
      const project = requireProject(values);
      if (action === 'create') {
        const k = await createKey(
          target.store,
          project,
          typeof values.name === 'string' ? { name: values.name } : {},
        );
        out(json, k, () => `${k.key}\n(key id ${k.info.keyId}; shown once, store it now)`);
      } else if (action === 'list') {
        const keys = await listKeys(target.store, project);
        out(
          json,
          keys,
          () => keys.map((k) => `${k.keyId}  ${k.createdAt}  ${k.name ?? ''}`).join('\n') || 'no keys',
        );
      } else if (action === 'revoke') {
        if (typeof values.id !== 'string') throw new UsageError('keys revoke needs --id KEY_ID');
        const existed = await revokeKey(target.store, project, values.id);
        if (!existed) throw new CliError(`project '${project}' has no key '${values.id}'`);
        out(json, { revoked: values.id }, () => `revoked ${values.id}`);
      } else {
        throw new UsageError('keys needs create, list or revoke');
      }
      return;
    }
    case 'backbone': {
      if (positionals[0] === 'import') {
        const modelJson = positionals[1];
        if (!modelJson || typeof values.id !== 'string' || typeof values.cut !== 'string') {
          throw new UsageError(
            'backbone import <model.json> --id ID --cut LAYER [--photos DIR] [--scale S] [--offset O]',
          );
        }
        const { importBackbone } = await import('./backbone-import.js');
        const r = await importBackbone(target.store, {
          modelJson: resolve(modelJson),
          id: values.id,
          cut: values.cut,
          ...(typeof values.photos === 'string' ? { photosDir: resolve(values.photos) } : {}),
          scale: values.scale ? Number(values.scale) : 1 / 255,
          offset: values.offset ? Number(values.offset) : 0,
        });
        out(
          json,
          r,
          () => `imported ${r.id}: ${r.bytes} bytes, feature cosine vs source ${r.cosineMean.toFixed(5)}`,
        );
        return;
      }
      if (positionals[0] === 'migrate') {
        const project = values.project === undefined ? undefined : requireProject(values);
        const { migrateCommand, migrationText } = await import('./backbone-migrate.js');
        const r = await migrateCommand(target, {
          ...(typeof values.to === 'string' ? { to: values.to } : {}),
          ...(project ? { project } : {}),
          log: (line) => console.error(`  ${line}`),
        });
        out(json, r, () => migrationText(r, project));
        const failed = r.projects.reduce((n, p) => n + p.failed.length, 0);
        if (failed > 0) {
          console.error(`headstart: ${failed} photos could not be extracted (listed above)`);
          process.exitCode = 1;
        }
        return;
      }
      if (positionals[0] !== 'list') throw new UsageError('backbone needs list, import or migrate');
      const [ids, defaultId] = await Promise.all([
        listBackbones(target.store),
        readDefaultBackboneId(target.store),
      ]);
      const manifests = await Promise.all(ids.map((id) => readBackboneManifest(target.store, id)));
      const rows = manifests.map((m) => ({ ...m, default: m.id === defaultId }));
      out(json, rows, () => backboneText(rows));
      return;
    }
  }
}

/**
 * The one line (and exit code) an error ends a command with. An error that names its exit code is written for
 * the person at the command line and is its own line; anything else says its code first and exits 1.
 */
export function errorLine(err: unknown): { line: string; code: number } {
  const message = messageOf(err);
  const exitCode = err instanceof HeadstartError ? err.exitCode : undefined;
  if (exitCode !== undefined) return { line: message, code: exitCode };
  const code = codeOf(err);
  // Node's own errors already start with their code (`ENOENT: no such file ...`): say it once.
  const prefix = code !== undefined && !message.startsWith(`${code}:`) ? `${code}: ` : '';
  return { line: `${prefix}${message}`, code: 1 };
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  try {
    await run(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const { line, code } = errorLine(err);
    console.error(`headstart: ${line}`);
    return code;
  }
}
