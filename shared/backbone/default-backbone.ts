import { QUANT_SLUG, type Quantization } from './backbone-manifest.js';
import { type ExportResult, exportBackbone } from './export-backbone.js';
import { loadNsfwjsMobileNetV2, NSFWJS_PREPROCESSING, NSFWJS_VERSION } from './nsfwjs-source.js';

/**
 * Where the default MobileNetV2 is cut. Its blocks 0-10 keep ImageNet weights and the blocks above were retrained
 * on nsfwjs' five classes, so the best general-purpose features sit below the top; `npm run bench:train` measures
 * clothing accuracy at several cuts and this is the one that won on validation (see README, "Where to cut").
 */
export const DEFAULT_CUT = 'block_13_depthwise_relu';
export const DEFAULT_INPUT_SIZE = 224;
export const DEFAULT_QUANTIZATION: Quantization = 'int8-per-channel';

export interface DefaultBackboneOptions {
  cut?: string;
  inputSize?: number;
  quantization?: Quantization;
  /** Decoded photos (RGB uint8 at inputSize) used to measure fidelity against the source. */
  fidelityImages: readonly Uint8Array[];
  /** Labels of the fidelity photos, to record a trained head's top-1 agreement too. */
  fidelityLabels?: readonly string[];
  minCosineMean?: number;
}

/** Ids name everything that changes features, so features cached under one id are never mixed with another's. */
export function defaultBackboneId(
  options: { cut?: string; inputSize?: number; quantization?: Quantization } = {},
): string {
  const cut = options.cut ?? DEFAULT_CUT;
  const size = options.inputSize ?? DEFAULT_INPUT_SIZE;
  const q = options.quantization ?? DEFAULT_QUANTIZATION;
  return `mnv2-nsfwjs.${cut}.${size}.${QUANT_SLUG[q]}`;
}

/** The pinned nsfwjs MobileNetV2, loaded (see loadNsfwjsMobileNetV2). */
export type NsfwjsSource = Awaited<ReturnType<typeof loadNsfwjsMobileNetV2>>;

/**
 * Exports one cut of the nsfwjs MobileNetV2 with its own preprocessing: the default backbone and the fine-tuning
 * trunk differ only in id, description, pooling and fidelity floor.
 */
export function exportNsfwjsCut(
  { model, weightsSha256 }: NsfwjsSource,
  options: DefaultBackboneOptions & { id: string; description: string; pooling: 'avg' | 'none' },
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
      cut: options.cut ?? DEFAULT_CUT,
      pooling: options.pooling,
      quantization: options.quantization ?? DEFAULT_QUANTIZATION,
      inputSize: options.inputSize ?? DEFAULT_INPUT_SIZE,
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
 * Builds the default edge backbone from the MobileNetV2 inside the pinned nsfwjs package: cut, batch norm
 * folded, per-channel int8. Deterministic: the same package version and options always give the same bytes and
 * therefore the same id and sha256.
 */
export async function buildDefaultBackbone(options: DefaultBackboneOptions): Promise<ExportResult> {
  const source = await loadNsfwjsMobileNetV2();
  try {
    const cut = options.cut ?? DEFAULT_CUT;
    return await exportNsfwjsCut(source, {
      ...options,
      id: defaultBackboneId(options),
      description: `MobileNetV2 1.0 from nsfwjs@${NSFWJS_VERSION}, cut at ${cut}, globally average-pooled`,
      pooling: 'avg',
    });
  } finally {
    source.model.dispose();
  }
}
