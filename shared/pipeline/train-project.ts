import { z } from 'zod';
import type { Backbone, BackboneManifest } from '../backbone/index.js';
import { type DatasetIndex, type Example, snapshotHash } from '../dataset/dataset-index.js';
import { type DedupedExamples, dedupeExamples } from '../dataset/dedupe-examples.js';
import { decodeFeatures, decodeSparseFeatures, type SparseFeatureFile } from '../dataset/feature-file.js';
import { compareSequencers } from '../dataset/sequencer.js';
import {
  chooseTrainingMode,
  type FineTuneOptions,
  type FineTuneResult,
  fineTune,
  fineTuneMargin,
  type TrainingMode,
} from '../finetune/fine-tune.js';
import { FineTuneError } from '../finetune/finetune-errors.js';
import { decodeSpatialFeatures, spatialFeatureKey } from '../finetune/spatial-trunk.js';
import { loadTop, type TopPackage } from '../finetune/top-package.js';
import type { TopSegment } from '../finetune/top-segment.js';
import { layout } from '../layout/index.js';
import { mapLimit } from '../map-limit.js';
import {
  encodeFineTunedVersion,
  encodeHeadVersion,
  flipPointer,
  type ModelManifest,
  modeOf,
  newVersionName,
  PointerConflictError,
  readPointer,
  readVersion,
  type SuspectsFile,
  type ValidationExample,
  type VersionServing,
  withOutlierDetector,
  withSuspects,
  writeVersion,
} from '../models/index.js';
import { calibrateForTraining, calibrateSoftmaxForTraining } from '../outlier/index.js';
import type { ObjectStore } from '../store/index.js';
import { PreconditionFailedError, parseJson, readJson } from '../store/index.js';
import { stackFeatures, type TextBackboneManifest } from '../text/index.js';
import {
  argmaxRow,
  DEFAULT_MIN_PER_LABEL,
  findLabelSuspects,
  type SuspectSearch,
  splitByHash,
  type TrainInput,
  TrainingError,
  type TrainOptions,
  type TrainResult,
  trainHead,
  type ValidationPredictions,
} from '../train/index.js';
import {
  gateOnValidation,
  type ProjectSettings,
  readProjectSettings,
  servingOf,
  trainedAsSettingsSay,
  trainingSettingsOf,
} from './project-settings.js';
import { readRetrainRequest } from './retrain-requests.js';
import { lastOutcomeSchema, recordFailure, recordOutcome, type TrainOutcome } from './train-outcome.js';
import {
  createProgressReporter,
  type ProgressReporter,
  trainingProgressSchema,
} from './training-progress.js';

/**
 * One training of one project, from a nudge to a promoted (or held-back) version:
 *
 * 1. Debounce: if the latest request is younger than the quiet window, a newer nudge is on its way; stop.
 * 2. Lease: at most one training per project, through a create-if-absent lease object that expires.
 * 3. Snapshot the dataset index; skip if nothing changed since the version it would replace.
 * 4. Train on cached features only (no backbone), write an immutable version, then gate and flip the pointer.
 * 5. Record the request consumed, so a request that arrived during training leads to exactly one more run.
 */
export const trainingStateSchema = z.object({
  project: z.string(),
  state: z.enum(['idle', 'training']),
  consumedSequence: z.string().optional(),
  updatedAt: z.string(),
  /** See train-outcome.ts; a record of an older shape reads as 'unrecognized', never as an error. */
  lastOutcome: lastOutcomeSchema.optional(),
  /** While training: the phase, step and time left (see training-progress.ts). */
  progress: trainingProgressSchema.optional(),
});
export type TrainingState = z.infer<typeof trainingStateSchema>;

const leaseSchema = z.object({ owner: z.string(), expiresAt: z.string() });

export const decisionSchema = z.object({
  version: z.string(),
  decision: z.enum(['promoted', 'candidate', 'forced']),
  reason: z.string(),
  macroF1: z.number(),
  currentMacroF1: z.number().optional(),
  at: z.string(),
});
export type Decision = z.infer<typeof decisionSchema>;

export type { TrainOutcome } from './train-outcome.js';

/** The dataset a training starts from, and the version it would replace. */
interface Snapshot {
  dataset: DedupedExamples;
  /** snapshotHash of the deduplicated examples: equal hashes, equal training data. */
  hash: string;
  currentManifest: ModelManifest | undefined;
  /** The project's settings, read once per training. */
  settings: ProjectSettings;
}

/** What every mode trains on: the photos with cached features, their labels, and the head search's input. */
interface Prepared {
  usable: Example[];
  /** Photos of the dataset with no cached feature under the training backbone: left out, never mixed in. */
  missingFeatures: number;
  /** The backbone whose cached features the photos were read under. */
  featureBackbone: string;
  /** The text backbone, for a text project (its rows are `input.sparse`). */
  text?: TextTrainingBackbone;
  labels: number[];
  labelNames: string[];
  ids: string[];
  setting: 'auto' | 'head' | 'finetune';
  /** How the version is to be served (the project's `predictFlip`, see servingOf), before gateOnValidation. */
  serving: VersionServing;
  /** The project's `maxFlipShare`. */
  maxFlipShare: number;
  /** Photos plus augmented views of the training split. */
  input: TrainInput;
  trainOptions: TrainOptions;
  /** Ids of the validation photos, when every label has enough for a split. */
  validationIds?: string[];
}

interface Fitted {
  head: TrainResult;
  /** Wall time of the head search (with its refit), what the suspect search's time is compared with. */
  headSeconds: number;
  modes: ChosenMode;
}

interface ChosenMode {
  chosen: TrainingMode;
  decision: ModeDecision;
  result?: FineTuneResult;
  /** The fine-tuned top's pooled output of every usable example: what its outlier detector is fitted on. */
  pooled?: { features: Float32Array; dim: number };
}

/** The label suspects of a training, as the version stores them, and what evaluation.json says of the search. */
interface Suspects {
  file: SuspectsFile | null;
  report:
    | { folds: number; photos: number; found: number; seconds: number; headSearchSeconds: number }
    | { reason: string };
}

/** What a trainer needs to know of the text backbone. */
export interface TextTrainingBackbone {
  id: string;
  weightsSha256: string;
  featureDim: number;
  /** Leading columns of a feature that are the pooled word vectors. */
  denseDim: number;
}

export interface TrainProjectDeps {
  store: ObjectStore;
  index: DatasetIndex;
  /** The backbone whose cached features to train on (its weights are not needed, only its manifest). */
  backbone: Pick<BackboneManifest, 'id' | 'weightsSha256' | 'inputSize'> & { featureDim: number };
  now?: () => Date;
  owner?: string;
  /** Default 30 s. */
  quietSeconds?: number;
  /** A lease older than this is someone's crash, not a training. Default 900 s (Lambda's maximum). */
  leaseSeconds?: number;
  /** A new version is promoted if its validation macro-F1 is at least the current one's minus this. Default 0.01. */
  promotionTolerance?: number;
  trainOptions?: TrainOptions;
  /**
   * The fine-tuning trunk of `backbone`, when published: projects whose trainingMode allows it also fine-tune the
   * top block on the trunk's cached activations, and the better of the two modes on validation becomes the version.
   */
  trunk?: TrunkDeps;
  /** Passed to fineTune. Default: stop after the epoch that crosses 600 s, to fit a function's 15 minutes. */
  fineTuneOptions?: Partial<Omit<FineTuneOptions, 'segment' | 'trunkId' | 'validationIds'>>;
  /**
   * Larger projects train heads only: their activations (75 KB per photo in memory) and epochs would not fit the
   * training function's 3 GB and 15 minutes. Default 5,000 photos.
   */
  fineTuneMaxExamples?: number;
  /** At most one progress write to the training state per this many ms. Default 2,000. */
  progressIntervalMs?: number;
  /**
   * The text backbone whose cached sentence features text projects (`modality: text`) train on: a softmax head
   * on the sparse rows, no fine-tuning; its outlier detector is the head's own doubt (shared/outlier).
   */
  textBackbone?: () => Promise<TextTrainingBackbone | undefined>;
  /** Test seam: runs between writing a version and flipping the pointer. */
  beforeFlip?: (version: string) => Promise<void>;
}

/** What a trainer needs to know of a loaded backbone. */
export function trainingBackbone(
  b: Pick<Backbone, 'manifest' | 'inputSize' | 'featureDim'>,
): TrainProjectDeps['backbone'] {
  return {
    id: b.manifest.id,
    weightsSha256: b.manifest.weightsSha256,
    inputSize: b.inputSize,
    featureDim: b.featureDim,
  };
}

/** What a trainer needs to know of a text backbone, from its manifest (the weights are never read). */
export function textTrainingBackbone(m: TextBackboneManifest): TextTrainingBackbone {
  return {
    id: m.id,
    weightsSha256: m.weightsSha256,
    featureDim: m.feature.dim,
    denseDim: m.feature.denseDim,
  };
}

export interface TrunkDeps {
  id: string;
  weightsSha256: string;
  inputSize: number;
  /** The pretrained blocks between the trunk and `backbone`'s feature; read once, on the first fine-tuning. */
  segment: () => Promise<TopSegment>;
}

/** Why a version uses the mode it does, with both modes' validation scores: recorded in evaluation.json. */
export interface ModeDecision {
  chosen: TrainingMode;
  setting: 'auto' | 'head' | 'finetune';
  reason: string;
  headOnly: { validationLoss: number; validationAccuracy: number; macroF1: number };
  fineTuned?: {
    validationLoss: number;
    validationAccuracy: number;
    macroF1: number;
    bestEpoch: number;
    stoppedBy: string;
    seconds: number;
  };
}

export interface TrainRequestOptions {
  /** Promote whatever the gate says (`train --force`). */
  forcePromotion?: boolean;
  /** Skip the quiet window (`train` from the CLI). */
  ignoreQuietWindow?: boolean;
}

export async function readTrainingState(
  store: ObjectStore,
  project: string,
): Promise<TrainingState | undefined> {
  return readJson(store, layout.trainingState(project), trainingStateSchema);
}

class ProjectTrainer {
  private readonly now: () => Date;
  private readonly owner: string;

  constructor(private readonly deps: TrainProjectDeps) {
    this.now = deps.now ?? (() => new Date());
    this.owner = deps.owner ?? `trainer-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  }

  private async acquireLease(
    project: string,
  ): Promise<{ ok: true; etag: string } | { ok: false; owner: string }> {
    const key = layout.trainingLease(project);
    const lease = JSON.stringify({
      owner: this.owner,
      expiresAt: new Date(this.now().getTime() + (this.deps.leaseSeconds ?? 900) * 1000).toISOString(),
    });
    try {
      const { etag } = await this.deps.store.put(key, lease, {
        ifNoneMatch: '*',
        contentType: 'application/json',
      });
      return { ok: true, etag };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const held = await this.deps.store.get(key);
    if (!held) return this.acquireLease(project);
    const current = parseJson(held.body, leaseSchema);
    if (Date.parse(current.expiresAt) > this.now().getTime()) return { ok: false, owner: current.owner };
    try {
      // Expired: take it over, but only if nobody else did first.
      const { etag } = await this.deps.store.put(key, lease, {
        ifMatch: held.etag,
        contentType: 'application/json',
      });
      return { ok: true, etag };
    } catch (err) {
      if (err instanceof PreconditionFailedError) return { ok: false, owner: 'another trainer' };
      throw err;
    }
  }

  private async releaseLease(project: string, etag: string): Promise<void> {
    const key = layout.trainingLease(project);
    const held = await this.deps.store.head(key);
    if (held && held.etag === etag) await this.deps.store.delete(key);
  }

  private async writeState(project: string, patch: Partial<TrainingState>): Promise<void> {
    const { progress: _stale, ...prev } = (await readTrainingState(this.deps.store, project)) ?? {};
    // Progress belongs to the write that reports it; any other write (the end of a training) clears it.
    const next: TrainingState = {
      project,
      state: 'idle',
      ...prev,
      ...patch,
      updatedAt: this.now().toISOString(),
    };
    await this.deps.store.put(layout.trainingState(project), JSON.stringify(next), {
      contentType: 'application/json',
    });
  }

  async run(project: string, options: TrainRequestOptions = {}): Promise<TrainOutcome> {
    const { store } = this.deps;
    const request = await readRetrainRequest(store, project);
    if (!request) return { status: 'up_to_date', project };
    const quiet = this.deps.quietSeconds ?? 30;
    const age = (this.now().getTime() - Date.parse(request.requestedAt)) / 1000;
    if (!options.ignoreQuietWindow && !request.immediate && age < quiet) {
      return { status: 'too_early', project, retryInSeconds: Math.ceil(quiet - age) };
    }
    const lease = await this.acquireLease(project);
    if (!lease.ok) return { status: 'busy', project, owner: lease.owner };
    try {
      // Re-read under the lease: this is the request this run consumes.
      const req = (await readRetrainRequest(store, project)) ?? request;
      const state = await readTrainingState(store, project);
      if (
        state?.consumedSequence &&
        compareSequencers(state.consumedSequence, req.sequence) >= 0 &&
        !req.force
      ) {
        return { status: 'up_to_date', project };
      }
      await this.writeState(project, { state: 'training' });
      const progress = createProgressReporter({
        write: (p) => this.writeState(project, { state: 'training', progress: p }),
        ...(this.deps.progressIntervalMs !== undefined ? { intervalMs: this.deps.progressIntervalMs } : {}),
      });
      const outcome = await this.train(project, options, req.force === true, progress).finally(() =>
        progress.settle(),
      );
      await this.writeState(project, {
        state: 'idle',
        consumedSequence: req.sequence,
        lastOutcome: recordOutcome(outcome, this.now()),
      });
      return outcome;
    } catch (err) {
      await this.writeState(project, {
        state: 'idle',
        lastOutcome: recordFailure('failed', (err as Error).message, this.now()),
      }).catch(() => {});
      throw err;
    } finally {
      // Only while the lease is still ours: a trainer that outlived it must not remove a successor's. The store
      // has no conditional delete, so a successor taking over between the check and the delete is still possible;
      // its writes stay safe (versions are immutable, the pointer flip is conditional).
      await this.releaseLease(project, lease.etag).catch(() => {});
    }
  }

  private async loadFeatures(examples: readonly Example[], view: string): Promise<Map<string, Float32Array>> {
    const shas = [...new Set(examples.map((e) => e.sha256))];
    const out = new Map<string, Float32Array>();
    await mapLimit(shas, 32, async (sha) => {
      const o = await this.deps.store.get(layout.feature(this.deps.backbone.id, sha, view));
      if (o) out.set(sha, decodeFeatures(o.body, this.deps.backbone.id).values);
    });
    return out;
  }

  /** Snapshot, fit, write, promote: one training of a project under its lease. */
  private async train(
    project: string,
    options: TrainRequestOptions,
    forceRequest: boolean,
    progress: ProgressReporter,
  ): Promise<TrainOutcome> {
    const started = performance.now();
    const snap = await this.snapshot(project);
    if (!options.forcePromotion && !forceRequest) {
      const textId = snap.currentManifest ? (await this.deps.textBackbone?.())?.id : undefined;
      const unchanged = this.unchangedOutcome(project, snap, textId);
      if (unchanged) return unchanged;
    }
    await progress.phase('loading features');
    const data = await this.prepare(snap.dataset.examples, snap.settings);
    if (data.usable.length === 0 && data.missingFeatures > 0) {
      return { status: 'refused', project, ...this.featuresMissing(project, data.missingFeatures) };
    }
    const fitted = await this.fit(data, progress);
    if ('refused' in fitted) return { status: 'refused', project, ...fitted.refused };
    await progress.phase('label suspects');
    const suspects = await this.findSuspects(data, fitted, progress);
    await progress.phase('writing version');
    const { version, metrics } = await this.write(project, snap, data, fitted, suspects);
    await this.deps.beforeFlip?.(version);
    const decision = await this.promote(project, version, metrics.macroF1, options.forcePromotion === true);
    return {
      status: decision.decision === 'candidate' ? 'candidate' : 'promoted',
      project,
      version,
      mode: fitted.modes.chosen,
      reason: decision.reason,
      metrics,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** The refusal of a dataset none of whose photos has features under the training backbone. */
  private featuresMissing(project: string, photos: number): { code: string; message: string } {
    const id = this.deps.backbone.id;
    return {
      code: 'features_missing',
      message: `none of the ${photos} photos of '${project}' has features under backbone '${id}' (they were extracted under another backbone): run \`npx headstart backbone migrate --project ${project} --to ${id}\``,
    };
  }

  /** The dataset as it is now, each photo once (by the rule in dedupe-examples.ts), and the version it would replace. */
  private async snapshot(project: string): Promise<Snapshot> {
    const { store } = this.deps;
    const dataset = dedupeExamples(await this.deps.index.snapshot(project));
    const current = await readPointer(store, project);
    let currentManifest: ModelManifest | undefined;
    if (current) {
      try {
        currentManifest = (await readVersion(store, project, current.pointer.version, { forServing: true }))
          .manifest;
      } catch {
        currentManifest = undefined; // a broken current version never blocks its replacement
      }
    }
    const settings = await readProjectSettings(store, project);
    return { dataset, hash: snapshotHash(dataset.examples), currentManifest, settings };
  }

  /**
   * 'unchanged' when the current version was trained on this very dataset, under the project's training-time
   * settings as they are now, by this backbone, its trunk or the text backbone.
   */
  private unchangedOutcome(project: string, snap: Snapshot, textId?: string): TrainOutcome | undefined {
    const m = snap.currentManifest;
    if (m?.datasetSnapshot !== snap.hash) return undefined;
    if (!trainedAsSettingsSay(m.trainedWith, snap.settings)) return undefined;
    const ids = [this.deps.backbone.id, this.deps.trunk?.id, textId];
    if (!ids.includes(m.backbone.id)) return undefined;
    const { accuracy, macroF1, n } = m.metrics;
    return {
      status: 'unchanged',
      project,
      version: m.version,
      mode: modeOf(m),
      metrics: { accuracy, macroF1, n },
    };
  }

  /** Cached features of the photos, the one validation split of every mode, and augmented training views. */
  private async prepare(examples: readonly Example[], settings: ProjectSettings): Promise<Prepared> {
    const { backbone } = this.deps;
    if (settings.modality === 'text') return this.prepareText(examples, settings);
    const features = await this.loadFeatures(examples, 'identity');
    const usable = examples.filter((e) => features.has(e.sha256));
    const labelNames = [...new Set(usable.map((e) => e.label))].sort();
    const dim = backbone.featureDim;
    const matrix = new Float32Array(usable.length * dim);
    usable.forEach((e, i) => {
      matrix.set(features.get(e.sha256)!, i * dim);
    });
    const labels = usable.map((e) => labelNames.indexOf(e.label));
    const ids = usable.map((e) => e.sha256);
    const prepared: Prepared = {
      usable,
      missingFeatures: examples.length - usable.length,
      featureBackbone: backbone.id,
      labels,
      labelNames,
      ids,
      setting: settings.trainingMode,
      serving: servingOf(settings),
      maxFlipShare: settings.maxFlipShare,
      input: { features: matrix, dim, labels, labelNames, ids },
      trainOptions: { ...this.deps.trainOptions, classWeight: settings.classWeight },
    };
    const minPerLabel = prepared.trainOptions.minPerLabel ?? DEFAULT_MIN_PER_LABEL;
    const counts = labelNames.map((_, li) => labels.filter((l) => l === li).length);
    if (counts.every((c) => c >= minPerLabel)) {
      await this.splitAndAugment(prepared, settings.augmentations);
    }
    return prepared;
  }

  /** The sentence features of a text project's examples, as sparse rows; one split, no augmented views. */
  private async prepareText(
    examples: readonly Example[],
    settings: Pick<ProjectSettings, 'classWeight'>,
  ): Promise<Prepared> {
    const text = await this.deps.textBackbone?.();
    if (!text) {
      throw new TrainingError(
        'no_text_backbone',
        'the store has no text backbone: upload a text to build one',
      );
    }
    const features = new Map<string, SparseFeatureFile>();
    await mapLimit([...new Set(examples.map((e) => e.sha256))], 32, async (sha) => {
      const o = await this.deps.store.get(layout.feature(text.id, sha));
      if (o) features.set(sha, decodeSparseFeatures(o.body, text.id));
    });
    const usable = examples.filter((e) => features.has(e.sha256));
    const labelNames = [...new Set(usable.map((e) => e.label))].sort();
    const labels = usable.map((e) => labelNames.indexOf(e.label));
    const ids = usable.map((e) => e.sha256);
    const prepared: Prepared = {
      usable,
      missingFeatures: examples.length - usable.length,
      featureBackbone: text.id,
      text,
      labels,
      labelNames,
      ids,
      setting: 'head',
      serving: { flip: false },
      maxFlipShare: 0,
      input: {
        features: new Float32Array(0),
        sparse: stackFeatures(usable.map((e) => features.get(e.sha256)!)),
        dim: text.featureDim,
        labels,
        labelNames,
        ids,
      },
      trainOptions: { ...this.deps.trainOptions, classWeight: settings.classWeight },
    };
    const minPerLabel = prepared.trainOptions.minPerLabel ?? DEFAULT_MIN_PER_LABEL;
    const counts = labelNames.map((_, li) => labels.filter((l) => l === li).length);
    if (counts.every((c) => c >= minPerLabel)) await this.splitAndAugment(prepared, []);
    return prepared;
  }

  /**
   * One split for every mode, made on the photos themselves: augmented views of validation photos are left out
   * (they would leak the answer), and the minimum-per-label rule counts photos, not views.
   */
  private async splitAndAugment(data: Prepared, augmentations: readonly string[]): Promise<void> {
    const { usable, labels, labelNames, ids, input, trainOptions } = data;
    const dim = input.dim;
    const split = splitByHash(ids, labels, {
      ...(trainOptions.validationFraction ? { fraction: trainOptions.validationFraction } : {}),
    });
    data.validationIds = split.validation.map((i) => ids[i]!);
    trainOptions.validationIds = data.validationIds;
    const trainRows = split.train.map((i) => usable[i]!);
    const extra: { values: Float32Array; label: number; id: string }[] = [];
    for (const view of augmentations) {
      const viewFeatures = await this.loadFeatures(trainRows, view);
      for (const e of trainRows) {
        const v = viewFeatures.get(e.sha256);
        if (v) extra.push({ values: v, label: labelNames.indexOf(e.label), id: `${e.sha256}.${view}` });
      }
    }
    if (extra.length === 0) return;
    const all = new Float32Array((usable.length + extra.length) * dim);
    all.set(input.features);
    extra.forEach((x, i) => {
      all.set(x.values, (usable.length + i) * dim);
    });
    input.features = all;
    input.labels = [...labels, ...extra.map((x) => x.label)];
    input.ids = [...ids, ...extra.map((x) => x.id)];
  }

  /** The head search, then fine-tuning where allowed; a dataset the head search refuses is a refusal. */
  private async fit(
    data: Prepared,
    progress: ProgressReporter,
  ): Promise<Fitted | { refused: { code: string; message: string } }> {
    const { trainOptions } = data;
    let head: TrainResult;
    await progress.phase('head search');
    const started = performance.now();
    try {
      head = await trainHead(data.input, {
        ...trainOptions,
        onCandidate: async (candidate, p) => {
          await trainOptions.onCandidate?.(candidate, p);
          await progress.step(p.done, { of: p.total });
        },
      });
    } catch (err) {
      if (err instanceof TrainingError) return { refused: { code: err.code, message: err.message } };
      throw err;
    }
    const headSeconds = (performance.now() - started) / 1000;
    const modes = await this.fineTuneIfAllowed(data.setting, head, data, data.validationIds, progress);
    return { head, headSeconds, modes };
  }

  /**
   * Cross-validated predictions of every photo by the head configuration the search chose (shared/train's
   * findLabelSuspects), whatever mode the version uses: they judge the labels, not the version. A fold the
   * trainer refuses leaves the version without suspects, with the reason.
   */
  private async findSuspects(data: Prepared, fitted: Fitted, progress: ProgressReporter): Promise<Suspects> {
    let found: SuspectSearch;
    try {
      found = await findLabelSuspects(data.input, {
        config: fitted.head.config,
        trainOptions: { ...this.deps.trainOptions },
        onFold: (p) => progress.step(p.done, { of: p.total }),
      });
    } catch (err) {
      if (err instanceof TrainingError) return { file: null, report: { reason: err.message } };
      throw err;
    }
    const { labelNames, usable } = data;
    const file: SuspectsFile = {
      schemaVersion: 1,
      folds: found.folds,
      photos: found.photos,
      suspects: found.suspects.map((x) => ({
        key: usable[x.row]!.key,
        sha256: usable[x.row]!.sha256,
        label: labelNames[x.label]!,
        suspectedLabel: labelNames[x.suspected]!,
        confidence: x.confidence,
        labelScore: x.labelScore,
      })),
    };
    const report = {
      folds: found.folds,
      photos: found.photos,
      found: found.suspects.length,
      seconds: found.seconds,
      headSearchSeconds: fitted.headSeconds,
    };
    return { file, report };
  }

  /** Writes the chosen mode's version (not yet current) through version-format.ts. */
  private async write(
    project: string,
    snap: Snapshot,
    data: Prepared,
    fitted: Fitted,
    suspects: Suspects,
  ): Promise<{ version: string; metrics: ModelManifest['metrics'] }> {
    const { head, modes } = fitted;
    const { backbone, trunk } = this.deps;
    const ft = modes.chosen === 'finetune' && trunk ? modes.result : undefined;
    const version = newVersionName(this.now());
    const scored = ft ? ft.metrics : head.metrics;
    const metrics = { accuracy: scored.accuracy, macroF1: scored.macroF1, n: scored.n };
    const { text } = data;
    // Texts have no input size: the head's backbone entry records 1.
    const featureBackbone = text ? { ...text, inputSize: 1 } : { ...backbone };
    const ran = ft && trunk ? trunk : featureBackbone;
    // The detector sees what the classifier sees: the head's input, or the fine-tuned top's pooled output, and
    // what the classifier made of each validation photo.
    const pooled = ft ? fitted.modes.pooled : undefined;
    const predictions = ft ? ft.validationPredictions : head.validationPredictions;
    // A text version's detector is the head's own doubt, calibrated on the split head's validation texts.
    const outlier = text
      ? calibrateSoftmaxForTraining({
          validation: data.validationIds ? head.validationPredictions : undefined,
          labels: data.labelNames.length,
          inputDim: text.featureDim,
        })
      : calibrateForTraining(
          pooled
            ? {
                features: pooled.features,
                dim: pooled.dim,
                labels: data.labels,
                labelNames: data.labelNames,
                ids: data.ids,
                validationIds: data.validationIds,
                validationPredictions: predictions,
              }
            : { ...data.input, validationIds: data.validationIds, validationPredictions: predictions },
        );
    const gate = gateOnValidation(data.serving, {
      probs: predictions.probs,
      labels: data.labelNames.length,
      maxShare: data.maxFlipShare,
    });
    const evaluation = {
      ...evaluationOf({ project, version, snap, data, fitted, scored, ran }),
      outlier: outlier.report,
      ...(gate.report ? { flipGate: gate.report } : {}),
      validationExamples: validationExamples({
        data,
        predictions,
        outlierScore: outlier.detector ? outlier.scoreOf : () => null,
      }),
      suspects: suspects.report,
    };
    const common = {
      project,
      version,
      createdAt: this.now().toISOString(),
      metrics,
      datasetSnapshot: snap.hash,
      serving: gate.serving,
      trainedWith: trainingSettingsOf(snap.settings),
      evaluation,
    };
    const encoded =
      ft && trunk
        ? encodeFineTunedVersion({
            common,
            trunk: { id: trunk.id, weightsSha256: trunk.weightsSha256, inputSize: trunk.inputSize },
            top: ft.top,
            training: {
              warmStart: ft.warmStart.config,
              bestEpoch: ft.bestEpoch,
              stoppedBy: ft.stoppedBy,
              nTrain: ft.nTrain,
              nValidation: ft.nValidation,
              seconds: ft.seconds,
            },
          })
        : encodeHeadVersion({
            common,
            backbone: {
              id: featureBackbone.id,
              weightsSha256: featureBackbone.weightsSha256,
              inputSize: featureBackbone.inputSize,
              featureDim: featureBackbone.featureDim,
            },
            head: head.head,
            type: head.config.headType,
            training: { ...head.config },
          });
    const complete = withSuspects(withOutlierDetector(encoded, outlier.detector), suspects.file);
    await writeVersion(this.deps.store, encoded.manifest, complete.files);
    return { version, metrics };
  }

  /** Trunk activations of every example, or the number of examples whose activation is not cached. */
  private async loadSpatial(
    trunkId: string,
    shape: [number, number, number],
    examples: readonly Example[],
  ): Promise<{ features: Float32Array } | { missing: number }> {
    const dim = shape[0] * shape[1] * shape[2];
    const out = new Float32Array(examples.length * dim);
    let missing = 0;
    const rows = new Map<string, number[]>();
    examples.forEach((e, i) => {
      rows.set(e.sha256, [...(rows.get(e.sha256) ?? []), i]);
    });
    await mapLimit([...rows.keys()], 32, async (sha) => {
      const o = await this.deps.store.get(spatialFeatureKey(trunkId, sha));
      const at = rows.get(sha)!;
      if (!o) {
        missing += at.length;
        return;
      }
      const values = decodeSpatialFeatures(o.body, trunkId, shape);
      for (const i of at) out.set(values, i * dim);
    });
    return missing > 0 ? { missing } : { features: out };
  }

  /**
   * Fine-tunes when the project's setting and the cache allow, on the head's validation split, and picks the mode
   * on validation (or as forced). Anything that stops fine-tuning leaves the head, with the reason recorded.
   */
  private async fineTuneIfAllowed(
    setting: 'auto' | 'head' | 'finetune',
    head: TrainResult,
    data: { usable: Example[]; labels: number[]; labelNames: string[]; ids: string[] },
    validationIds: string[] | undefined,
    progress: ProgressReporter,
  ): Promise<ChosenMode> {
    const headOnly = {
      validationLoss: head.validationLoss,
      validationAccuracy: head.metrics.accuracy,
      macroF1: head.metrics.macroF1,
    };
    const headMode = (reason: string) => ({
      chosen: 'head' as const,
      decision: { chosen: 'head' as const, setting, reason, headOnly },
    });
    const trunk = this.deps.trunk;
    if (setting === 'head') return headMode('the project trains heads only (trainingMode: head)');
    if (!trunk) return headMode(`no fine-tuning trunk is published for backbone '${this.deps.backbone.id}'`);
    if (!validationIds) return headMode('too few photos per label for a validation split');
    const maxExamples = this.deps.fineTuneMaxExamples ?? 5000;
    if (data.usable.length > maxExamples) {
      return headMode(
        `${data.usable.length} photos are more than fine-tuning takes (${maxExamples}: memory and the function's time limit)`,
      );
    }
    let segment: TopSegment;
    try {
      segment = await trunk.segment();
    } catch (err) {
      if (!(err instanceof FineTuneError)) throw err;
      return headMode(`the trunk's pretrained blocks cannot be read: ${err.message}`);
    }
    const loaded = await this.loadSpatial(trunk.id, segment.inputShape, data.usable);
    if ('missing' in loaded) {
      return headMode(
        `${loaded.missing} of ${data.usable.length} photos have no cached '${trunk.id}' activation (uploaded while the project trained heads only, or before the trunk was published); re-upload them to fine-tune`,
      );
    }
    let result: FineTuneResult;
    const maxSeconds = this.deps.fineTuneOptions?.maxSeconds ?? 600;
    await progress.phase('fine-tuning');
    try {
      result = await fineTune(
        { features: loaded.features, labels: data.labels, labelNames: data.labelNames, ids: data.ids },
        {
          maxSeconds,
          classWeight: head.config.classWeight,
          ...this.deps.fineTuneOptions,
          onEpoch: async (record, p) => {
            await this.deps.fineTuneOptions?.onEpoch?.(record, p);
            if (record.epoch > 0) await progress.step(record.epoch, { of: p.maxEpochs, maxSeconds });
          },
          segment,
          trunkId: trunk.id,
          validationIds,
        },
      );
    } catch (err) {
      if (!(err instanceof FineTuneError)) throw err;
      return headMode(`fine-tuning failed: ${err.message}`);
    }
    const fineTuned = {
      validationLoss: result.validationLoss,
      validationAccuracy: result.metrics.accuracy,
      macroF1: result.metrics.macroF1,
      bestEpoch: result.bestEpoch,
      stoppedBy: result.stoppedBy,
      seconds: result.seconds,
    };
    const headScore = {
      ...headOnly,
      n: head.config.nValidation,
      smallValidation: head.config.selection === 'cross-validation',
    };
    const margin = fineTuneMargin(headScore);
    const chosen = chooseTrainingMode(headScore, fineTuned, setting === 'finetune' ? 'finetune' : undefined);
    const fmt = (m: { validationLoss: number; validationAccuracy: number }) =>
      `loss ${m.validationLoss.toFixed(4)}, accuracy ${m.validationAccuracy.toFixed(4)}`;
    const reason =
      setting === 'finetune'
        ? 'fine-tuning is forced (trainingMode: finetune)'
        : `on validation, fine-tuned ${fmt(fineTuned)} against head-only ${fmt(headOnly)}${margin > 0 ? ` (a split this small asks fine-tuning for ${margin.toFixed(4)} more accuracy)` : ''}`;
    // The head-only score as chosen by: with its split size, so evaluation.json explains the choice in full.
    const decision = { chosen, setting, reason, headOnly: headScore, fineTuned };
    if (chosen !== 'finetune') return { chosen, decision, result };
    return { chosen, decision, result, pooled: pooledByTop(result.top, loaded.features, data.usable.length) };
  }

  /** The promotion gate, retried against the new current version if another training flipped first. */
  private async promote(
    project: string,
    version: string,
    macroF1: number,
    force: boolean,
  ): Promise<Decision> {
    const { store } = this.deps;
    const tolerance = this.deps.promotionTolerance ?? 0.01;
    let decision: Decision | undefined;
    for (let attempt = 0; attempt < 5 && !decision; attempt++) {
      const current = await readPointer(store, project);
      let currentF1: number | undefined;
      if (current) {
        try {
          const read = await readVersion(store, project, current.pointer.version, { forServing: true });
          currentF1 = read.manifest.metrics.macroF1;
        } catch {
          currentF1 = undefined;
        }
      }
      const at = this.now().toISOString();
      const base = {
        version,
        macroF1,
        ...(currentF1 !== undefined ? { currentMacroF1: currentF1 } : {}),
        at,
      };
      if (!force && currentF1 !== undefined && macroF1 < currentF1 - tolerance) {
        decision = {
          ...base,
          decision: 'candidate',
          reason: `validation macro-F1 ${macroF1.toFixed(4)} is below the current ${currentF1.toFixed(4)} minus ${tolerance}`,
        };
        break;
      }
      try {
        await flipPointer(store, project, version, force ? 'forced' : 'promoted', current?.etag, this.now());
        decision = {
          ...base,
          decision: force ? 'forced' : 'promoted',
          reason: current
            ? `validation macro-F1 ${macroF1.toFixed(4)} against ${currentF1?.toFixed(4) ?? 'an unreadable version'}`
            : 'first version',
        };
      } catch (err) {
        if (!(err instanceof PointerConflictError)) {
          decision = {
            ...base,
            decision: 'candidate',
            reason: `not promoted: ${(err as Error).message}`,
          };
        }
        // On a conflict, loop: gate again against whatever won.
      }
    }
    decision ??= {
      version,
      macroF1,
      at: this.now().toISOString(),
      decision: 'candidate',
      reason: 'the pointer kept changing',
    };
    await store.put(layout.decision(project, version), JSON.stringify(decision), {
      contentType: 'application/json',
    });
    return decision;
  }
}

/** evaluation.json: the validation scores, how the mode was chosen, and what the dataset held. */
function evaluationOf(v: {
  project: string;
  version: string;
  snap: Snapshot;
  data: Prepared;
  fitted: Fitted;
  scored: TrainResult['metrics'] | FineTuneResult['metrics'];
  ran: { id: string; weightsSha256: string };
}) {
  const { head, modes } = v.fitted;
  return {
    project: v.project,
    version: v.version,
    mode: modes.decision,
    validation: v.scored,
    config: head.config,
    search: head.search,
    ...(modes.result ? { fineTuneHistory: modes.result.history } : {}),
    datasetSnapshot: v.snap.hash,
    examples: v.data.usable.length,
    ...(v.data.missingFeatures > 0
      ? {
          missingFeatures: {
            backbone: v.data.featureBackbone,
            photos: v.data.missingFeatures,
            hint: 'left out of training: run `npx headstart backbone migrate` to extract them under this backbone',
          },
        }
      : {}),
    ...duplicatesReport(v.snap.dataset),
    perLabelCounts: Object.fromEntries(
      v.data.labelNames.map((l) => [l, v.data.usable.filter((e) => e.label === l).length]),
    ),
    backbone: { id: v.ran.id, weightsSha256: v.ran.weightsSha256 },
  };
}

/**
 * Each validation photo once, with what the version's predictor said of it (the probabilities its validation
 * metrics were computed from, so every confusion-matrix cell lists its photos) and its outlier score.
 */
function validationExamples(v: {
  data: Prepared;
  predictions: ValidationPredictions;
  outlierScore: (id: string) => number | null;
}): ValidationExample[] {
  const { labelNames } = v.data;
  const k = labelNames.length;
  const bySha = new Map(v.data.usable.map((e) => [e.sha256, e]));
  const { ids, probs } = v.predictions;
  return ids.flatMap((id, i) => {
    const photo = bySha.get(id);
    if (!photo) return [];
    const p = argmaxRow(probs, i, k);
    return [
      {
        key: photo.key,
        sha256: photo.sha256,
        label: photo.label,
        predicted: labelNames[p]!,
        score: probs[i * k + p]!,
        outlierScore: v.outlierScore(id),
      },
    ];
  });
}

/** What evaluation.json records of photos uploaded more than once (see dedupe-examples.ts for the rule). */
function duplicatesReport(d: DedupedExamples) {
  return {
    /** Keys whose photo is counted under another key. */
    duplicateKeys: d.extraKeys,
    duplicates: d.duplicates,
    conflicts: d.conflicts,
  };
}

export function createProjectTrainer(deps: TrainProjectDeps): { run: ProjectTrainer['run'] } {
  const t = new ProjectTrainer(deps);
  return { run: (project, options) => t.run(project, options) };
}

export async function readDecision(
  store: ObjectStore,
  project: string,
  version: string,
): Promise<Decision | undefined> {
  return readJson(store, layout.decision(project, version), decisionSchema);
}

/** The pooled features a fine-tuned top's classifier takes, for `n` trunk activations. */
function pooledByTop(
  top: TopPackage,
  activations: Float32Array,
  n: number,
): { features: Float32Array; dim: number } {
  const loaded = loadTop(top);
  try {
    return { features: loaded.pooled(activations, n), dim: loaded.pooledDim };
  } finally {
    loaded.dispose();
  }
}
