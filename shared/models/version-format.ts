import { z } from 'zod';
import { type FineTunedTop, loadTop, parseTop, type TopPackage, topFiles } from '../finetune/top-package.js';
import { messageOf } from '../headstart-error.js';
import { decodeOutlierDetector, encodeOutlierDetector, type OutlierDetector } from '../outlier/index.js';
import { type Head, loadHead as loadSerializedHead, type SerializedHead } from '../train/index.js';
import { InvalidVersionError } from './model-errors.js';

/**
 * What a model version is on the wire: its files and its manifest's blocks. The only module that knows them;
 * the pipeline encodes through it, the edge and the CLI decode through it. A new per-version artifact is a new
 * entry in `VERSION_FILES`, written by its producer's encoder here and read back by `decodeVersion`.
 */
export const VERSION_FILES = {
  /** A head's tfjs model.json (topology and weight manifest) and its weights. */
  headJson: 'head.json',
  headWeights: 'head.bin',
  /** A fine-tuned top's descriptor (top-package.ts) and its weights. */
  topJson: 'top.json',
  topWeights: 'top.bin',
  /** The outlier detector (shared/outlier): descriptor and weights; versions trained before it have neither. */
  outlierJson: 'outlier.json',
  outlierWeights: 'outlier.bin',
  /**
   * Validation scores, each validation photo's prediction, the mode decision and the dataset's counts: for people,
   * never read to predict.
   */
  evaluation: 'evaluation.json',
  /** Photos whose label the training's cross-validated predictions disagree with (see `encodeSuspects`); for people. */
  suspects: 'suspects.json',
} as const;

/** Files for people, not for predictions: the edge does not read them (`readVersion`'s `forServing`). */
export const PEOPLE_FILES: ReadonlySet<string> = new Set([VERSION_FILES.evaluation, VERSION_FILES.suspects]);

/** `manifest.head.format` of each mode. */
export const VERSION_FORMATS = {
  /** A head on the backbone's pooled feature. */
  head: 'tfjs-layers',
  /** A fine-tuned top block and classifier on the unpooled activation of the trunk that `backbone` names. */
  finetune: 'headstart-finetuned-top',
} as const;

export const HEAD_JSON = VERSION_FILES.headJson;
export const HEAD_BIN = VERSION_FILES.headWeights;
export const TOP_JSON = VERSION_FILES.topJson;
export const TOP_WEIGHTS = VERSION_FILES.topWeights;
export const TOP_FORMAT = VERSION_FORMATS.finetune;

export type VersionMode = keyof typeof VERSION_FORMATS;
export const headFormatSchema = z.enum([VERSION_FORMATS.head, VERSION_FORMATS.finetune]);

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const metricsSchema = z.object({
  accuracy: z.number(),
  macroF1: z.number(),
  n: z.number().int().nonnegative(),
});

export const servingSchema = z.object({
  flip: z.boolean(),
  /** With `flip`: only photos whose single view's top score is under this also run mirrored. Absent: every photo. */
  flipBelow: z.number().gt(0).lte(1).optional(),
});
export type VersionServing = z.infer<typeof servingSchema>;

/** `models/<project>/<version>/manifest.json`: immutable once written. */
export const modelManifestSchema = z.object({
  schemaVersion: z.literal(1),
  project: z.string(),
  version: z.string(),
  createdAt: z.string().datetime(),
  /** Output order of the head. */
  labels: z.array(z.string()).min(2),
  backbone: z.object({
    id: z.string(),
    weightsSha256: sha256,
    inputSize: z.number().int().positive(),
    featureDim: z.number().int().positive(),
  }),
  head: z.object({
    /** See VERSION_FORMATS; the files each format needs are in VERSION_FILES. */
    format: headFormatSchema,
    /** File name within the version directory to its sha256; the edge refuses a head whose bytes differ. */
    files: z.record(z.string(), sha256),
    /** The classifier's kind ('softmax', 'mlp'); a fine-tuned top says so in `format`. */
    type: z.string(),
  }),
  metrics: metricsSchema,
  datasetSnapshot: sha256,
  training: z.record(z.string(), z.unknown()),
  /**
   * How the edge runs this version. `flip`: the photo's mirror also goes through the backbone and the two views'
   * probabilities are averaged, for every photo or (`flipBelow`) only for those the single view is unsure of.
   * Absent in versions written before it existed: served as one view.
   */
  serving: servingSchema.optional(),
  /**
   * The project's training-time settings this version was trained under (see SETTINGS_READ_AT_TRAINING), so a
   * training of an unchanged dataset still retrains after one of them changed. Absent in versions written before
   * it existed: their settings are taken as unchanged.
   */
  trainedWith: z.record(z.string(), z.unknown()).optional(),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;

/** A manifest before `writeVersion` hashes its files into `head.files`. */
export type ManifestDraft = Omit<ModelManifest, 'head'> & { head: Omit<ModelManifest['head'], 'files'> };

/** What `writeVersion` takes. */
export interface EncodedVersion {
  manifest: ManifestDraft;
  files: Record<string, Uint8Array | string>;
}

/** The blocks every version has, whatever its mode. */
export interface VersionCommon {
  project: string;
  version: string;
  createdAt: string;
  metrics: ModelManifest['metrics'];
  datasetSnapshot: string;
  /** See `modelManifestSchema.serving`; pinned per version so a rollback serves exactly as before. */
  serving?: VersionServing;
  /** See `modelManifestSchema.trainedWith`. */
  trainedWith?: Record<string, unknown>;
  /** Written as evaluation.json. */
  evaluation: EvaluationDraft;
}

/** One validation photo in evaluation.json: what the version's predictor and outlier detector made of it. */
export const validationExampleSchema = z.object({
  /** The upload key the photo counts under (a photo uploaded under several keys is listed once). */
  key: z.string(),
  sha256,
  label: z.string(),
  predicted: z.string(),
  /** Probability of `predicted`. */
  score: z.number(),
  /** The version's outlier detector's score (higher is more unusual); null for a version without one. */
  outlierScore: z.number().nullable(),
});
export type ValidationExample = z.infer<typeof validationExampleSchema>;

/**
 * evaluation.json as read back: only what a reader relies on is checked, the rest passes through. Versions
 * trained before per-photo evaluation have no `validationExamples`.
 */
export const evaluationSchema = z
  .object({ validationExamples: z.array(validationExampleSchema).optional() })
  .passthrough();
export type Evaluation = z.infer<typeof evaluationSchema>;
export type EvaluationDraft = Record<string, unknown> & { validationExamples?: ValidationExample[] };

/** A version's evaluation.json, or an InvalidVersionError naming `where`. */
export function decodeEvaluation(bytes: Uint8Array, where: string): Evaluation {
  return decodeJson(bytes, evaluationSchema, `the evaluation of ${where}`);
}

/** The validation scores evaluation.json records (`validation`), as readers need them. */
export const validationMetricsSchema = z.object({
  n: z.number(),
  accuracy: z.number(),
  macroF1: z.number(),
  ece: z.number().optional(),
  perLabel: z.array(
    z.object({
      label: z.string(),
      precision: z.number(),
      recall: z.number(),
      f1: z.number(),
      support: z.number(),
    }),
  ),
  /** confusion[t][p]: photos of true label perLabel[t] predicted as perLabel[p]. */
  confusion: z.array(z.array(z.number())),
});
export type ValidationMetrics = z.infer<typeof validationMetricsSchema>;

/** The validation block of an evaluation, or undefined when the version's evaluation has none in this shape. */
export function validationMetricsOf(evaluation: Evaluation): ValidationMetrics | undefined {
  const parsed = validationMetricsSchema.safeParse((evaluation as { validation?: unknown }).validation);
  return parsed.success ? parsed.data : undefined;
}

/** The validation photos of one confusion-matrix cell: true label `label`, predicted `predicted`. */
export function examplesInCell(
  evaluation: Evaluation,
  cell: { label: string; predicted: string },
): ValidationExample[] {
  return (evaluation.validationExamples ?? []).filter(
    (e) => e.label === cell.label && e.predicted === cell.predicted,
  );
}

export const suspectSchema = z.object({
  key: z.string(),
  sha256,
  label: z.string(),
  suspectedLabel: z.string(),
  /** Cross-validated probability of `suspectedLabel`. */
  confidence: z.number(),
  /** Cross-validated probability of the given `label`. */
  labelScore: z.number(),
});
export type Suspect = z.infer<typeof suspectSchema>;

/**
 * suspects.json. Per version rather than per project: the ranking is a product of one training on one dataset
 * snapshot (the manifest's `datasetSnapshot`), so it is written, immutable, with the version it came from and
 * needs no pointer of its own to be replaced atomically, and it goes when the version does. A reader that wants
 * the freshest ranking reads the newest version's, and drops suspects whose upload has moved since.
 */
export const suspectsFileSchema = z.object({
  schemaVersion: z.literal(1),
  folds: z.number().int().positive(),
  /** Photos scored out of fold. */
  photos: z.number().int().nonnegative(),
  /** Most suspect first. */
  suspects: z.array(suspectSchema),
});
export type SuspectsFile = z.infer<typeof suspectsFileSchema>;

/** Adds the training's label suspects to an encoded version (either mode). */
export function withSuspects(encoded: EncodedVersion, suspects: SuspectsFile | null): EncodedVersion {
  if (!suspects) return encoded;
  const body = JSON.stringify(suspectsFileSchema.parse(suspects));
  return { ...encoded, files: { ...encoded.files, [VERSION_FILES.suspects]: body } };
}

/** A version's suspects.json (read with `readVersionFile`), or an InvalidVersionError naming `where`. */
export function decodeSuspects(bytes: Uint8Array, where: string): SuspectsFile {
  return decodeJson(bytes, suspectsFileSchema, `the label suspects of ${where}`);
}

function decodeJson<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string): T {
  try {
    return schema.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (cause) {
    throw new InvalidVersionError(`${what} is invalid: ${messageOf(cause)}`, { cause });
  }
}

function encode(
  common: VersionCommon,
  mode: VersionMode,
  blocks: Pick<ManifestDraft, 'labels' | 'backbone' | 'training'> & { type: string },
  files: Record<string, Uint8Array | string>,
): EncodedVersion {
  const { evaluation, ...rest } = common;
  return {
    manifest: {
      schemaVersion: 1,
      ...rest,
      labels: blocks.labels,
      backbone: blocks.backbone,
      head: { format: VERSION_FORMATS[mode], type: blocks.type },
      training: { mode, ...blocks.training },
    },
    files: { ...files, [VERSION_FILES.evaluation]: JSON.stringify(evaluation, null, 2) },
  };
}

/** A head on the backbone's pooled feature. */
export function encodeHeadVersion(input: {
  common: VersionCommon;
  backbone: ModelManifest['backbone'];
  head: Pick<SerializedHead, 'modelJson' | 'weightData' | 'labels'>;
  /** The head's kind ('softmax', 'mlp'). */
  type: string;
  training: Record<string, unknown>;
}): EncodedVersion {
  const { head } = input;
  return encode(
    input.common,
    'head',
    { labels: head.labels, backbone: input.backbone, training: input.training, type: input.type },
    {
      [VERSION_FILES.headJson]: JSON.stringify(head.modelJson),
      [VERSION_FILES.headWeights]: head.weightData,
    },
  );
}

/** A fine-tuned top on the trunk's activation; the manifest's backbone is the trunk, its feature the activation. */
export function encodeFineTunedVersion(input: {
  common: VersionCommon;
  trunk: Omit<ModelManifest['backbone'], 'featureDim'>;
  top: TopPackage;
  training: Record<string, unknown>;
}): EncodedVersion {
  const { descriptor } = input.top;
  const [h, w, c] = descriptor.trunk.shape;
  const files = topFiles(input.top);
  return encode(
    input.common,
    'finetune',
    {
      labels: descriptor.labels,
      backbone: { ...input.trunk, featureDim: h * w * c },
      training: input.training,
      type: descriptor.classifier.type,
    },
    { [VERSION_FILES.topJson]: files.json, [VERSION_FILES.topWeights]: files.weights },
  );
}

/**
 * Which photos the edge also runs mirrored for this version (see `modelManifestSchema.serving`): none, every one,
 * or those whose single view's top score is under `below`.
 */
export type FlipPolicy = { mirror: 'none' } | { mirror: 'all' } | { mirror: 'unsure'; below: number };

export function flipPolicyOf(manifest: Pick<ModelManifest, 'serving'>): FlipPolicy {
  const serving = manifest.serving;
  if (serving?.flip !== true) return { mirror: 'none' };
  return serving.flipBelow === undefined ? { mirror: 'all' } : { mirror: 'unsure', below: serving.flipBelow };
}

/** Adds a calibrated outlier detector's files to an encoded version (either mode). */
export function withOutlierDetector(
  encoded: EncodedVersion,
  detector: OutlierDetector | null,
): EncodedVersion {
  if (!detector) return encoded;
  const { json, weights } = encodeOutlierDetector(detector);
  return {
    ...encoded,
    files: { ...encoded.files, [VERSION_FILES.outlierJson]: json, [VERSION_FILES.outlierWeights]: weights },
  };
}

/** Which kind of predictor a manifest describes. */
export function modeOf(manifest: { head: Pick<ModelManifest['head'], 'format'> }): VersionMode {
  return manifest.head.format === VERSION_FORMATS.finetune ? 'finetune' : 'head';
}

/** The predictor of a mode, for people. */
export function describeMode(mode: VersionMode): string {
  return mode === 'finetune' ? 'fine-tuned top' : 'head';
}

/** A loaded version: its predictor (the caller disposes it) and what scores the same input for outliers. */
export interface VersionPredictor {
  head: Head;
  /**
   * The calibrated outlier detector, on the head's input (for a fine-tuned top, trunk activations: it scores
   * the top's pooled output, what the top's classifier sees); null for a version trained without one.
   */
  outlier: OutlierDetector | null;
}

/** A version whose files passed every check; `load()` builds its predictor. */
export interface DecodedVersion {
  mode: VersionMode;
  load(): Promise<VersionPredictor>;
}

/** A version as `readVersion` returns it, its files already checked against the manifest's sha256s. */
export interface StoredVersion {
  manifest: ModelManifest;
  files: ReadonlyMap<string, Uint8Array>;
}

export interface DecodeOptions {
  /** Names the version in messages, e.g. "version v1 of 'closet'". */
  where: string;
  /** Test seam: loads a serialized head. Default: train/head-model.ts's loadHead. */
  loadHead?: (head: SerializedHead) => Promise<Head>;
}

/**
 * Checks a version read by `readVersion` (whose file sha256s it already checked) against its format: the files
 * the format needs, and for a fine-tuned top its descriptor, weights' sha256, trunk, shape and labels against
 * the manifest. Anything wrong is an InvalidVersionError; nothing is loaded until `load()`.
 */
export function decodeVersion(version: StoredVersion, options: DecodeOptions): DecodedVersion {
  const outlier = decodeOutlier(version, options.where);
  if (modeOf(version.manifest) === 'finetune') {
    const load = decodeFineTunedTop(version, options.where);
    return {
      mode: 'finetune',
      load: async () => {
        const top = await load();
        if (!outlier) return { head: top, outlier: null };
        if (outlier.inputDim !== top.pooledDim) {
          top.dispose();
          throw new InvalidVersionError(
            `the outlier detector of ${options.where} scores ${outlier.inputDim} features, but its fine-tuned top pools ${top.pooledDim}`,
          );
        }
        return { head: top, outlier: onPooledOutput(outlier, top) };
      },
    };
  }
  const load = decodeHead(version, options);
  if (outlier && outlier.inputDim !== version.manifest.backbone.featureDim) {
    throw new InvalidVersionError(
      `the outlier detector of ${options.where} scores ${outlier.inputDim} features, but the manifest's backbone gives ${version.manifest.backbone.featureDim}`,
    );
  }
  return { mode: 'head', load: async () => ({ head: await load(), outlier }) };
}

/** A fine-tuned top's detector scores the pooled features its classifier takes, not the trunk's activation. */
function onPooledOutput(detector: OutlierDetector, top: FineTunedTop): OutlierDetector {
  return {
    method: detector.method,
    inputDim: top.inputDim,
    threshold: detector.threshold,
    params: detector.params,
    score: (features, n, probs) => detector.score(top.pooled(features, n), n, probs),
    withThreshold: (t) => onPooledOutput(detector.withThreshold(t), top),
  };
}

/** The version's detector, if its manifest lists one (readVersion has checked the files' sha256s). */
function decodeOutlier({ manifest, files }: StoredVersion, where: string): OutlierDetector | null {
  const listed = [VERSION_FILES.outlierJson, VERSION_FILES.outlierWeights].filter(
    (n) => n in manifest.head.files,
  );
  if (listed.length === 0) return null;
  const names: [string, string] = [VERSION_FILES.outlierJson, VERSION_FILES.outlierWeights];
  const [json, weights] = pairOf(files, names, `${where} has an incomplete outlier detector: it needs`);
  let detector: OutlierDetector;
  try {
    detector = decodeOutlierDetector(json, weights);
  } catch (cause) {
    throw new InvalidVersionError(`the outlier detector of ${where} is invalid: ${messageOf(cause)}`, {
      cause,
    });
  }
  if (detector.threshold === null) {
    throw new InvalidVersionError(`the outlier detector of ${where} has no threshold`);
  }
  return detector;
}

/** A model file and its weights, or a refusal naming both. */
function pairOf(
  files: ReadonlyMap<string, Uint8Array>,
  names: [string, string],
  missing: string,
): [Uint8Array, Uint8Array] {
  const [json, weights] = names.map((n) => files.get(n));
  if (!json || !weights) throw new InvalidVersionError(`${missing} ${names[0]} and ${names[1]}`);
  return [json, weights];
}

function decodeHead({ manifest, files }: StoredVersion, options: DecodeOptions): () => Promise<Head> {
  const names: [string, string] = [VERSION_FILES.headJson, VERSION_FILES.headWeights];
  const [json, weights] = pairOf(files, names, `${options.where} has no`);
  const load = options.loadHead ?? loadSerializedHead;
  return () =>
    load({
      modelJson: JSON.parse(new TextDecoder().decode(json)) as Record<string, unknown>,
      weightData: weights,
      labels: manifest.labels,
      inputDim: manifest.backbone.featureDim,
    });
}

function decodeFineTunedTop({ manifest, files }: StoredVersion, where: string): () => Promise<FineTunedTop> {
  const names: [string, string] = [VERSION_FILES.topJson, VERSION_FILES.topWeights];
  const [json, weights] = pairOf(files, names, `${where} is a fine-tuned top but has no`);
  let pkg: TopPackage;
  try {
    pkg = parseTop(json, weights);
  } catch (cause) {
    throw new InvalidVersionError(`the fine-tuned top of ${where} is invalid: ${messageOf(cause)}`, {
      cause,
    });
  }
  const { trunk, labels } = pkg.descriptor;
  const [h, w, c] = trunk.shape;
  const inputDim = h * w * c;
  if (trunk.id !== manifest.backbone.id) {
    throw new InvalidVersionError(
      `the fine-tuned top of ${where} runs on trunk '${trunk.id}', but the manifest names backbone '${manifest.backbone.id}'`,
    );
  }
  if (inputDim !== manifest.backbone.featureDim) {
    throw new InvalidVersionError(
      `the fine-tuned top of ${where} takes ${h}x${w}x${c} = ${inputDim} trunk values, but the manifest's backbone gives ${manifest.backbone.featureDim}`,
    );
  }
  if (labels.length !== manifest.labels.length || labels.some((l, i) => l !== manifest.labels[i])) {
    throw new InvalidVersionError(
      `the fine-tuned top of ${where} predicts [${labels.join(', ')}], but the manifest lists [${manifest.labels.join(', ')}]`,
    );
  }
  // A loaded top has a head's contract: trunk activations in, class probabilities out.
  return async () => loadTop(pkg);
}
