import { QUANT_SLUG, type Quantization } from './backbone-manifest.js';
import { type BuiltInBackboneOptions, type ExportResult, exportBackbone } from './export-backbone.js';
import { loadNsfwjsMobileNetV2, NSFWJS_PREPROCESSING, NSFWJS_VERSION } from './nsfwjs-source.js';

/**
 * nsfwjs' Keras MobileNetV2 1.0, the default backbone until the 1.4-wide graph model replaced it (issue 14); kept
 * buildable so stores and versions made with it keep training, fine-tuning and serving.
 *
 * Where it is cut: its blocks 0-10 keep ImageNet weights and the blocks above were retrained on nsfwjs' five
 * classes, so the best general-purpose features sit below the top; `npm run bench:train` measured clothing
 * accuracy at several cuts and this one won on validation (see README, "Where to cut").
 */
export const MNV2_CUT = 'block_13_depthwise_relu';
export const MNV2_INPUT_SIZE = 224;
export const MNV2_QUANTIZATION: Quantization = 'int8-per-channel';

/** Ids name everything that changes features, so features cached under one id are never mixed with another's. */
export function mnv2BackboneId(
  options: { cut?: string; inputSize?: number; quantization?: Quantization } = {},
): string {
  const cut = options.cut ?? MNV2_CUT;
  const size = options.inputSize ?? MNV2_INPUT_SIZE;
  const q = options.quantization ?? MNV2_QUANTIZATION;
  return `mnv2-nsfwjs.${cut}.${size}.${QUANT_SLUG[q]}`;
}

/** The pinned nsfwjs MobileNetV2, loaded (see loadNsfwjsMobileNetV2). */
export type NsfwjsSource = Awaited<ReturnType<typeof loadNsfwjsMobileNetV2>>;

/**
 * Exports one cut of the nsfwjs MobileNetV2 with its own preprocessing: the backbone and its fine-tuning trunk
 * differ only in id, description, pooling and fidelity floor.
 */
export function exportNsfwjsCut(
  { model, weightsSha256 }: NsfwjsSource,
  options: BuiltInBackboneOptions & { id: string; description: string; pooling: 'avg' | 'none' },
): Promise<ExportResult> {
  return exportBackbone(
    {
      model,
      id: `nsfwjs@${NSFWJS_VERSION}/mobilenet_v2`,
      weightsSha256,
      note: 'Keras layers model, uint8 per tensor',
    },
    {
      id: options.id,
      description: options.description,
      cut: options.cut ?? MNV2_CUT,
      pooling: options.pooling,
      quantization: options.quantization ?? MNV2_QUANTIZATION,
      inputSize: options.inputSize ?? MNV2_INPUT_SIZE,
      resize: NSFWJS_PREPROCESSING.resize,
      scale: NSFWJS_PREPROCESSING.scale,
      offset: NSFWJS_PREPROCESSING.offset,
      fidelityImages: options.fidelityImages,
      ...(options.fidelityLabels ? { fidelityLabels: options.fidelityLabels } : {}),
      ...(options.minCosineMean !== undefined ? { minCosineMean: options.minCosineMean } : {}),
    },
  );
}

/**
 * Builds the edge backbone from the MobileNetV2 1.0 inside the pinned nsfwjs package: cut, batch norm folded,
 * per-channel int8. Deterministic: the same package version and options always give the same bytes and
 * therefore the same id and sha256.
 */
export async function buildMnv2Backbone(options: BuiltInBackboneOptions): Promise<ExportResult> {
  const source = await loadNsfwjsMobileNetV2();
  try {
    const cut = options.cut ?? MNV2_CUT;
    return await exportNsfwjsCut(source, {
      ...options,
      id: mnv2BackboneId(options),
      description: `MobileNetV2 1.0 from nsfwjs@${NSFWJS_VERSION}, cut at ${cut}, globally average-pooled`,
      pooling: 'avg',
    });
  } finally {
    source.model.dispose();
  }
}
