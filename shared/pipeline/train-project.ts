import { z } from 'zod';
import type { Backbone, BackboneManifest } from '../backbone/index.js';
import { type DatasetIndex, type Example, snapshotHash } from '../dataset/dataset-index.js';
import { type DedupedExamples, dedupeExamples } from '../dataset/dedupe-examples.js';
import { decodeFeatures } from '../dataset/feature-file.js';
import { compareSequencers } from '../dataset/sequencer.js';
import {
  chooseTrainingMode,
  type FineTuneOptions,
  type FineTuneResult,
  fineTune,
  type TrainingMode,
} from '../finetune/fine-tune.js';
import { FineTuneError } from '../finetune/finetune-errors.js';
import { decodeSpatialFeatures, spatialFeatureKey } from '../finetune/spatial-trunk.js';
import { TOP_JSON, TOP_WEIGHTS, topFiles } from '../finetune/top-package.js';
import type { TopSegment } from '../finetune/top-segment.js';
import { mapLimit } from '../map-limit.js';
import {
  flipPointer,
  layout,
  type ModelManifest,
  newVersionName,
  PointerConflictError,
  readPointer,
  readVersion,
  writeVersion,
} from '../models/index.js';
import type { ObjectStore } from '../store/index.js';
import { PreconditionFailedError } from '../store/index.js';
import {
  DEFAULT_MIN_PER_LABEL,
  splitByHash,
  TrainingError,
  type TrainOptions,
  type TrainResult,
  trainHead,
} from '../train/index.js';
import { projectSettingsSchema } from './extract-uploads.js';
import { readRetrainRequest } from './retrain-requests.js';
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
  lastOutcome: z.record(z.string(), z.unknown()).optional(),
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

export type TrainOutcome =
  | { status: 'too_early'; project: string; retryInSeconds: number }
  | { status: 'busy'; project: string; owner: string }
  | { status: 'up_to_date'; project: string }
  | {
      /** The current version was trained on exactly this dataset: it is what serves it. */
      status: 'unchanged';
      project: string;
      version: string;
      mode: TrainingMode;
      metrics: { accuracy: number; macroF1: number; n: number };
    }
  | { status: 'refused'; project: string; code: string; message: string }
  | {
      status: 'promoted' | 'candidate';
      project: string;
      version: string;
      /** Whether the version is a head on pooled features or a fine-tuned top on the trunk's. */
      mode: TrainingMode;
      reason: string;
      metrics: { accuracy: number; macroF1: number; n: number };
      seconds: number;
    };

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

const json = (o: { body: Uint8Array }) => JSON.parse(new TextDecoder().decode(o.body)) as unknown;

export async function readTrainingState(
  store: ObjectStore,
  project: string,
): Promise<TrainingState | undefined> {
  const o = await store.get(layout.trainingState(project));
  return o ? trainingStateSchema.parse(json(o)) : undefined;
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
    const current = leaseSchema.parse(json(held));
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
        lastOutcome: { ...outcome, at: this.now().toISOString() },
      });
      return outcome;
    } catch (err) {
      await this.writeState(project, {
        state: 'idle',
        lastOutcome: { status: 'failed', message: (err as Error).message, at: this.now().toISOString() },
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

  private async train(
    project: string,
    options: TrainRequestOptions,
    forceRequest: boolean,
    progress: ProgressReporter,
  ): Promise<TrainOutcome> {
    const started = performance.now();
    const { store, backbone } = this.deps;
    // One photo counts once: duplicates and label conflicts are resolved here, by the rule in dedupe-examples.ts.
    const dataset = dedupeExamples(await this.deps.index.snapshot(project));
    const { examples } = dataset;
    const snapshot = snapshotHash(examples);
    const current = await readPointer(store, project);
    let currentManifest: ModelManifest | undefined;
    if (current) {
      try {
        currentManifest = (await readVersion(store, project, current.pointer.version)).manifest;
      } catch {
        currentManifest = undefined; // a broken current version never blocks its replacement
      }
    }
    if (
      currentManifest?.datasetSnapshot === snapshot &&
      (currentManifest.backbone.id === backbone.id || currentManifest.backbone.id === this.deps.trunk?.id) &&
      !options.forcePromotion &&
      !forceRequest
    ) {
      const m = currentManifest.metrics;
      return {
        status: 'unchanged',
        project,
        version: currentManifest.version,
        mode: currentManifest.head.format === 'headstart-finetuned-top' ? 'finetune' : 'head',
        metrics: { accuracy: m.accuracy, macroF1: m.macroF1, n: m.n },
      };
    }

    await progress.phase('loading features');
    const features = await this.loadFeatures(examples, 'identity');
    const usable = examples.filter((e) => features.has(e.sha256));
    const labelNames = [...new Set(usable.map((e) => e.label))].sort();
    const dim = backbone.featureDim;
    const matrix = new Float32Array(usable.length * dim);
    usable.forEach((e, i) => {
      matrix.set(features.get(e.sha256)!, i * dim);
    });
    const settings = projectSettingsSchema.parse(
      await store.get(layout.projectSettings(project)).then((o) => (o ? json(o) : {})),
    );
    const labels = usable.map((e) => labelNames.indexOf(e.label));
    const ids = usable.map((e) => e.sha256);
    const input = { features: matrix, dim, labels, labelNames, ids };
    const trainOptions: TrainOptions = { ...this.deps.trainOptions };
    const minPerLabel = trainOptions.minPerLabel ?? DEFAULT_MIN_PER_LABEL;
    const counts = labelNames.map((_, li) => labels.filter((l) => l === li).length);
    let validationIds: string[] | undefined;
    if (counts.every((c) => c >= minPerLabel)) {
      // One split for every mode, made on the photos themselves: augmented views of validation photos are left
      // out (they would leak the answer), and the minimum-per-label rule counts photos, not views.
      const split = splitByHash(ids, labels, {
        ...(trainOptions.validationFraction ? { fraction: trainOptions.validationFraction } : {}),
      });
      validationIds = split.validation.map((i) => ids[i]!);
      trainOptions.validationIds = validationIds;
      const trainRows = split.train.map((i) => usable[i]!);
      const extra: { values: Float32Array; label: number; id: string }[] = [];
      for (const view of settings.augmentations) {
        const viewFeatures = await this.loadFeatures(trainRows, view);
        for (const e of trainRows) {
          const v = viewFeatures.get(e.sha256);
          if (v) extra.push({ values: v, label: labelNames.indexOf(e.label), id: `${e.sha256}.${view}` });
        }
      }
      if (extra.length > 0) {
        const all = new Float32Array((usable.length + extra.length) * dim);
        all.set(matrix);
        extra.forEach((x, i) => {
          all.set(x.values, (usable.length + i) * dim);
        });
        input.features = all;
        input.labels = [...labels, ...extra.map((x) => x.label)];
        input.ids = [...ids, ...extra.map((x) => x.id)];
      }
    }
    let result: TrainResult;
    await progress.phase('head search');
    try {
      result = await trainHead(input, {
        ...trainOptions,
        onCandidate: async (candidate, p) => {
          await trainOptions.onCandidate?.(candidate, p);
          await progress.step(p.done, { of: p.total });
        },
      });
    } catch (err) {
      if (err instanceof TrainingError)
        return { status: 'refused', project, code: err.code, message: err.message };
      throw err;
    }

    const modes = await this.fineTuneIfAllowed(
      settings.trainingMode,
      result,
      { usable, labels, labelNames, ids },
      validationIds,
      progress,
    );
    await progress.phase('writing version');
    const ft = modes.chosen === 'finetune' ? modes.result : undefined;
    const trunk = this.deps.trunk;

    const version = newVersionName(this.now());
    const scored = ft ? ft.metrics : result.metrics;
    const metrics = { accuracy: scored.accuracy, macroF1: scored.macroF1, n: scored.n };
    const evaluation = {
      project,
      version,
      mode: modes.decision,
      validation: scored,
      config: result.config,
      search: result.search,
      ...(modes.result ? { fineTuneHistory: modes.result.history } : {}),
      datasetSnapshot: snapshot,
      examples: usable.length,
      ...duplicatesReport(dataset),
      perLabelCounts: Object.fromEntries(
        labelNames.map((l) => [l, usable.filter((e) => e.label === l).length]),
      ),
      backbone:
        ft && trunk
          ? { id: trunk.id, weightsSha256: trunk.weightsSha256 }
          : { id: backbone.id, weightsSha256: backbone.weightsSha256 },
    };
    const common = {
      schemaVersion: 1 as const,
      project,
      version,
      createdAt: this.now().toISOString(),
      metrics,
      datasetSnapshot: snapshot,
    };
    if (ft && trunk) {
      const [h, w, c] = ft.top.descriptor.trunk.shape;
      const files = topFiles(ft.top);
      await writeVersion(
        store,
        {
          ...common,
          labels: ft.top.descriptor.labels,
          backbone: {
            id: trunk.id,
            weightsSha256: trunk.weightsSha256,
            inputSize: trunk.inputSize,
            featureDim: h * w * c,
          },
          head: { format: 'headstart-finetuned-top', type: ft.top.descriptor.classifier.type },
          training: {
            mode: 'finetune',
            warmStart: ft.warmStart.config,
            bestEpoch: ft.bestEpoch,
            stoppedBy: ft.stoppedBy,
            nTrain: ft.nTrain,
            nValidation: ft.nValidation,
            seconds: ft.seconds,
          },
        },
        {
          [TOP_JSON]: files.json,
          [TOP_WEIGHTS]: files.weights,
          'evaluation.json': JSON.stringify(evaluation, null, 2),
        },
      );
    } else {
      await writeVersion(
        store,
        {
          ...common,
          labels: result.head.labels,
          backbone: {
            id: backbone.id,
            weightsSha256: backbone.weightsSha256,
            inputSize: backbone.inputSize,
            featureDim: dim,
          },
          head: { format: 'tfjs-layers', type: result.config.headType },
          training: { mode: 'head', ...result.config },
        },
        {
          'head.json': JSON.stringify(result.head.modelJson),
          'head.bin': result.head.weightData,
          'evaluation.json': JSON.stringify(evaluation, null, 2),
        },
      );
    }
    await this.deps.beforeFlip?.(version);
    const decision = await this.promote(project, version, metrics.macroF1, options.forcePromotion === true);
    return {
      status: decision.decision === 'candidate' ? 'candidate' : 'promoted',
      project,
      version,
      mode: modes.chosen,
      reason: decision.reason,
      metrics,
      seconds: (performance.now() - started) / 1000,
    };
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
  ): Promise<{ chosen: TrainingMode; decision: ModeDecision; result?: FineTuneResult }> {
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
    const chosen = chooseTrainingMode(headOnly, fineTuned, setting === 'finetune' ? 'finetune' : undefined);
    const fmt = (m: { validationLoss: number; validationAccuracy: number }) =>
      `loss ${m.validationLoss.toFixed(4)}, accuracy ${m.validationAccuracy.toFixed(4)}`;
    const reason =
      setting === 'finetune'
        ? 'fine-tuning is forced (trainingMode: finetune)'
        : `on validation, fine-tuned ${fmt(fineTuned)} against head-only ${fmt(headOnly)}`;
    return { chosen, decision: { chosen, setting, reason, headOnly, fineTuned }, result };
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
          currentF1 = (await readVersion(store, project, current.pointer.version)).manifest.metrics.macroF1;
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
    await store.put(`${layout.modelsPrefix(project)}decisions/${version}.json`, JSON.stringify(decision), {
      contentType: 'application/json',
    });
    return decision;
  }
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
  const o = await store.get(`${layout.modelsPrefix(project)}decisions/${version}.json`);
  return o ? decisionSchema.parse(json(o)) : undefined;
}
