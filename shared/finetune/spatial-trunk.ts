import type { Quantization } from '../backbone/backbone-manifest.js';
import type { ExportResult } from '../backbone/export-backbone.js';
import { exportNsfwjsCut, MNV2_CUT, mnv2BackboneId, type NsfwjsSource } from '../backbone/mnv2-backbone.js';
import { loadNsfwjsMobileNetV2, NSFWJS_VERSION } from '../backbone/nsfwjs-source.js';
import { decodeFeatures, encodeFeatures, type FeatureDtype } from '../dataset/feature-file.js';
import { layout } from '../layout/index.js';
import { InvalidFineTuneInputError } from './finetune-errors.js';
import { foldTopSegment, type TopSegment } from './top-segment.js';

/**
 * Where fine-tuning cuts nsfwjs' MobileNetV2 1.0 (the default backbone before issue 14): the frozen trunk ends at block 12's output (14x14x96, 37 KB
 * per image as float16) and the top retrains block 13's expansion and depthwise convolution, up to the head-only
 * feature layer, so the untrained top is exactly the head-only model. Measured on clothing-small
 * (`bench/finetune-bench.ts --study=B,C`, 3,068 training photos): also retraining block 12 scored a little better
 * on validation (loss 0.611 against 0.628) but took 2.3x the CPU time (742 s against 317 s), too close to a
 * function's 15 minutes to leave room for loading features or a larger project; retraining blocks 13-16 above the
 * head-only cut only overfit (validation loss rose from the first epoch). Pass another TopSegment to fineTune to
 * trade time for accuracy.
 */
export const MNV2_TRUNK_CUT = 'block_12_add';
export const MNV2_FEATURE_CUT = MNV2_CUT;

/** Feature-cache dtype of spatial activations: float16 costs no measurable accuracy (see the benchmark). */
export const SPATIAL_FEATURE_DTYPE: FeatureDtype = 'float16';

/**
 * Id of the MobileNetV2 1.0 trunk cut at `cut`, unpooled. It shares its backbone id's scheme (source, cut,
 * input size, quantization) with a `.spatial` suffix, so pooled and spatial caches of one project live side by
 * side under `features/<id>/` and can never be mixed up. Keras layer names carry capitals; ids may not.
 */
export function mnv2TrunkId(
  options: { cut?: string; inputSize?: number; quantization?: Quantization } = {},
): string {
  const cut = (options.cut ?? MNV2_TRUNK_CUT).toLowerCase();
  return `${mnv2BackboneId({ ...options, cut })}.spatial`;
}

/**
 * Fidelity floor for an unpooled trunk. Every position of a 14x14 activation carries its own int8 rounding noise,
 * which global pooling averages away, so the same weights that reach a pooled cosine above 0.99 reach about 0.98
 * on the raw map (measured at block_12_add on the clothing-mini fixtures: mean 0.983, min 0.971). The trunk is
 * exactly the first part of the int8 backbone, so this is the same computation the head-only path runs.
 */
export const TRUNK_MIN_COSINE_MEAN = 0.97;

export interface TrunkOptions {
  cut?: string;
  inputSize?: number;
  quantization?: Quantization;
  /** Decoded photos (RGB uint8 at inputSize) on which the export is checked against the source. */
  fidelityImages: readonly Uint8Array[];
  /** Default TRUNK_MIN_COSINE_MEAN. */
  minCosineMean?: number;
}

/** Runs `use` on one load of the pinned nsfwjs model, disposed afterwards. */
async function fromNsfwjs<T>(use: (source: NsfwjsSource) => Promise<T> | T): Promise<T> {
  const source = await loadNsfwjsMobileNetV2();
  try {
    return await use(source);
  } finally {
    source.model.dispose();
  }
}

function exportTrunk(source: NsfwjsSource, options: TrunkOptions): Promise<ExportResult> {
  const cut = options.cut ?? MNV2_TRUNK_CUT;
  return exportNsfwjsCut(source, {
    ...options,
    cut,
    id: mnv2TrunkId(options),
    description: `MobileNetV2 1.0 from nsfwjs@${NSFWJS_VERSION}, cut at ${cut}, unpooled (trunk for fine-tuning)`,
    pooling: 'none',
    minCosineMean: options.minCosineMean ?? TRUNK_MIN_COSINE_MEAN,
  });
}

function foldMnv2Segment(model: NsfwjsSource['model'], trunkCut = MNV2_TRUNK_CUT): TopSegment {
  return foldTopSegment(model, { trunkCut, featureCut: MNV2_FEATURE_CUT });
}

/**
 * Builds the frozen trunk for fine-tuning: the same nsfwjs MobileNetV2, folded and quantized exactly as its
 * backbone, but cut lower and not pooled. Its feature is the flattened NHWC activation at the cut.
 * Store it like any backbone (saveBackbone); the precompute function extracts it into `features/<trunk id>/`.
 */
export function buildMnv2Trunk(options: TrunkOptions): Promise<ExportResult> {
  return fromNsfwjs((source) => exportTrunk(source, options));
}

/** A trunk and the segment above it: what a deployment publishes for fine-tuning. */
export interface FineTuningBuild {
  trunk: ExportResult;
  segment: TopSegment;
}

/** The MobileNetV2 1.0 trunk and segment from one load of the source model. */
export function buildMnv2FineTuning(options: TrunkOptions): Promise<FineTuningBuild> {
  return fromNsfwjs(async (source) => ({
    trunk: await exportTrunk(source, options),
    segment: foldMnv2Segment(source.model, options.cut),
  }));
}

/** Store key of one image's trunk activation: the same content-addressed layout as pooled features. */
export function spatialFeatureKey(trunkId: string, sha256: string, view?: string): string {
  return layout.feature(trunkId, sha256, view);
}

/** A feature file holding one trunk activation (flattened [h, w, c]), float16 unless asked otherwise. */
export function encodeSpatialFeatures(
  trunkId: string,
  values: Float32Array,
  dtype: FeatureDtype = SPATIAL_FEATURE_DTYPE,
): Uint8Array {
  return encodeFeatures(trunkId, values, dtype);
}

/** Reads a trunk activation, refusing another backbone's features or another shape. */
export function decodeSpatialFeatures(
  bytes: Uint8Array,
  trunkId: string,
  shape: readonly [number, number, number],
): Float32Array {
  const file = decodeFeatures(bytes, trunkId);
  const dim = shape[0] * shape[1] * shape[2];
  if (file.dim !== dim) {
    throw new InvalidFineTuneInputError(
      `feature file of '${trunkId}' holds ${file.dim} values; a ${shape.join('x')} activation has ${dim}`,
    );
  }
  return file.values;
}
