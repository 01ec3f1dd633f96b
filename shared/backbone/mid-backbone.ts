import { InvalidBackboneError } from './backbone-errors.js';
import { backboneIdSchema, QUANT_SLUG, type Quantization } from './backbone-manifest.js';
import { sha256Hex } from './backbone-package.js';
import { type BuiltInBackboneOptions, type ExportResult, exportFolded } from './export-backbone.js';
import { foldGraphModel } from './graph-model-fold.js';
import type { Pooling } from './grid-pool.js';
import { loadBackbone } from './load-backbone.js';
import {
  NSFWJS_PREPROCESSING,
  NSFWJS_VERSION,
  nsfwjsSourcePackage,
  readNsfwjsModel,
} from './nsfwjs-source.js';

/** Every node of nsfwjs' mobilenet_v2_mid below the classifier sits under this scope. */
export const MID_PREFIX =
  'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/MobilenetV2/';

/**
 * Where the 1.4-wide MobileNetV2 is cut and pooled: chosen on clothing-small validation by
 * bench/mid-backbone-probe.ts. Its size: 160 px costs what MobileNetV2 1.0 cost at 224 (224 px costs 1.8 times
 * that) and was at least as accurate on clothing-small, clothing at 32 px and digits (README, "Input size").
 */
export const MID_CUT = 'expanded_conv_13/depthwise/depthwise';
export const MID_POOLING: Pooling = 'grid2';
export const MID_INPUT_SIZE = 160;
export const MID_QUANTIZATION: Quantization = 'int8-per-channel';

/** The cuts around block 13 that the probe compares. */
export const MID_CUT_CANDIDATES = [
  'expanded_conv_12/add',
  'expanded_conv_13/expand/Relu6',
  'expanded_conv_13/depthwise/depthwise',
  'expanded_conv_13/project/BatchNorm/FusedBatchNormV3',
  'expanded_conv_14/expand/Relu6',
  'expanded_conv_14/depthwise/depthwise',
] as const;

/** A built-in backbone's options, plus the pooling. */
export type MidBackboneOptions = BuiltInBackboneOptions & { pooling?: Pooling };

/** A graph node name as an id segment: `expanded_conv_13/depthwise/depthwise` -> `ec13-dw`. */
export function midCutSlug(cut: string): string {
  return cut
    .toLowerCase()
    .replace(/^expanded_conv_(\d+)/, 'ec$1')
    .replace(/^expanded_conv\b/, 'ec0')
    .replace(/\/depthwise\/depthwise$/, '/dw')
    .replace(/\/batchnorm\/fusedbatchnormv3$/, '')
    .replace(/\/relu6$/, '')
    .replace(/\//g, '-')
    .replace(/[^a-z0-9._-]/g, '_');
}

/** Ids name everything that changes features: `mnv2x14-nsfwjs.ec13-dw.160.grid2.i8c`. */
export function midBackboneId(
  options: { cut?: string; inputSize?: number; pooling?: Pooling; quantization?: Quantization } = {},
): string {
  const cut = midCutSlug(options.cut ?? MID_CUT);
  const id = `mnv2x14-nsfwjs.${cut}.${options.inputSize ?? MID_INPUT_SIZE}.${options.pooling ?? MID_POOLING}.${QUANT_SLUG[options.quantization ?? MID_QUANTIZATION]}`;
  const ok = backboneIdSchema.safeParse(id);
  if (!ok.success)
    throw new InvalidBackboneError(`backbone id '${id}' is invalid: ${ok.error.issues[0]?.message}`);
  return id;
}

/**
 * Builds a backbone from the 1.4-wide MobileNetV2 graph model inside the pinned nsfwjs package: converted to
 * Headstart's graph (its input Mul/Sub folded into the preprocessing; batch norm is already folded upstream),
 * cut, pooled, per-channel int8, and refused below the fidelity floor against the graph model run as shipped.
 * Deterministic: the same package and options give the same bytes, sha256 and id.
 */
export async function buildMidBackbone(options: MidBackboneOptions): Promise<ExportResult> {
  const cut = options.cut ?? MID_CUT;
  const inputSize = options.inputSize ?? MID_INPUT_SIZE;
  const pooling = options.pooling ?? MID_POOLING;
  const quantization = options.quantization ?? MID_QUANTIZATION;
  const files = readNsfwjsModel('mobilenet_v2_mid');
  const folded = foldGraphModel(files, {
    cut,
    pooling,
    inputSize,
    prefix: MID_PREFIX,
    inputScale: NSFWJS_PREPROCESSING.scale,
    inputOffset: NSFWJS_PREPROCESSING.offset,
  });
  return exportFolded({
    folded,
    source: {
      id: `nsfwjs@${NSFWJS_VERSION}/mobilenet_v2_mid`,
      weightsSha256: sha256Hex(files.weights),
      note: 'tfjs graph model (MobileNetV2 1.4, batch norm fused), uint8 per tensor',
    },
    options: {
      id: midBackboneId({ cut, inputSize, pooling, quantization }),
      description: `MobileNetV2 1.4 from nsfwjs@${NSFWJS_VERSION} mobilenet_v2_mid, cut at ${folded.cut}, ${pooling}-pooled`,
      inputSize,
      pooling,
      quantization,
      resize: NSFWJS_PREPROCESSING.resize,
      fidelityImages: options.fidelityImages,
      ...(options.fidelityLabels ? { fidelityLabels: options.fidelityLabels } : {}),
      ...(options.minCosineMean !== undefined ? { minCosineMean: options.minCosineMean } : {}),
    },
    reference: () =>
      loadBackbone(
        nsfwjsSourcePackage(
          'mobilenet_v2_mid',
          { layer: MID_PREFIX + folded.cut, pooling, dim: folded.featureDim },
          { inputSize },
        ),
        { warmup: false },
      ),
  });
}
