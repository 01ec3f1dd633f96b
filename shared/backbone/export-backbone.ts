import type * as tfl from '@tensorflow/tfjs-layers';
import { loadHead, trainHead } from '../train/index.js';
import { FidelityError, InvalidBackboneError } from './backbone-errors.js';
import type { BackboneManifest, Quantization } from './backbone-manifest.js';
import { type BackbonePackage, sha256Hex } from './backbone-package.js';
import type { Pooling } from './grid-pool.js';
import { foldLayersModel, type HeadstartGraph, type NamedWeights } from './headstart-graph.js';
import { type Backbone, backboneFromLayersModel, loadBackbone } from './load-backbone.js';
import { encodeWeights } from './quantize.js';

export interface ExportSource {
  /** The source model as tfjs layers, with its own (possibly quantized) weights already loaded. */
  model: tfl.LayersModel;
  id: string;
  weightsSha256: string;
  note?: string;
}

export interface ExportOptions {
  id: string;
  description?: string;
  cut: string;
  pooling?: Pooling;
  quantization?: Quantization;
  /** Defaults to the source model's input size. Smaller sizes need a backbone that pools globally. */
  inputSize?: number;
  resize?: 'center-crop' | 'squash';
  scale: number;
  offset: number;
  /** Pixels (RGB HWC uint8 at inputSize) of real photos on which the export is compared with its source. */
  fidelityImages: readonly Uint8Array[];
  /**
   * Labels of the fidelity photos, when known: a softmax head is trained on the source's features and the share
   * of photos on which it predicts the same top-1 from the export's features is recorded too.
   */
  fidelityLabels?: readonly string[];
  /** Refuse to export when the mean cosine similarity of features falls below this. Default 0.99. */
  minCosineMean?: number;
  createdAt?: Date;
}

/** What a built-in backbone's build takes; every built-in backbone takes the same. */
export interface BuiltInBackboneOptions {
  cut?: string;
  inputSize?: number;
  quantization?: Quantization;
  /** Decoded photos (RGB uint8 at inputSize) used to measure fidelity against the source. */
  fidelityImages: readonly Uint8Array[];
  /** Labels of the fidelity photos, to record a trained head's top-1 agreement too. */
  fidelityLabels?: readonly string[];
  minCosineMean?: number;
}

export interface ExportResult {
  pkg: BackbonePackage;
  /** Per-image cosine similarity between exported and source features. */
  cosines: number[];
  /** Bytes the same graph would take in float32, for size ratios. */
  float32Bytes: number;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb || 1);
}

/**
 * Turns a source layers model into Headstart's edge format: cut at `cut`, batch norm folded, weights encoded
 * (per-channel int8 by default). The result is compared with the source on real photos and refused below the
 * fidelity threshold, so a backbone that would silently change features never gets published.
 */
export async function exportBackbone(source: ExportSource, options: ExportOptions): Promise<ExportResult> {
  const nativeSize = (source.model.inputs[0]?.shape[1] as number | null) ?? undefined;
  const inputSize = options.inputSize ?? nativeSize;
  if (!inputSize) throw new InvalidBackboneError('the source model has no fixed input size; pass inputSize');
  const pooling = options.pooling ?? 'avg';
  const folded = foldLayersModel(source.model, { cut: options.cut, pooling });
  return exportFolded({
    folded: { ...folded, cut: options.cut, scale: options.scale, offset: options.offset },
    source: {
      id: source.id,
      weightsSha256: source.weightsSha256,
      ...(source.note ? { note: source.note } : {}),
    },
    options: { ...options, inputSize, pooling },
    // At the source's own input size, compare with the source model itself; at other sizes the source cannot
    // run, so compare with the same folded graph in float32 (folding alone is exact to float rounding).
    reference: async (reference) =>
      inputSize === nativeSize
        ? backboneFromLayersModel(source.model, reference.manifest)
        : loadBackbone(reference, { warmup: false }),
  });
}

export interface FoldedSource {
  graph: HeadstartGraph;
  weights: NamedWeights;
  featureDim: number;
  /** The cut as the exported graph names it (the manifest's feature.layer). */
  cut: string;
  scale: number;
  offset: number;
}

/**
 * Encodes a folded graph, measures it against `reference` (given the float32 build of the same graph, it
 * returns the backbone to compare with: the source itself where it can run) and refuses it below the floor.
 */
export async function exportFolded(args: {
  folded: FoldedSource;
  source: { id: string; weightsSha256: string; note?: string };
  options: Omit<ExportOptions, 'cut' | 'scale' | 'offset'> & { inputSize: number; pooling: Pooling };
  reference: (float32: BackbonePackage) => Promise<Backbone>;
}): Promise<ExportResult> {
  const { folded, options } = args;
  const { graph, weights, featureDim } = folded;
  if (options.fidelityImages.length === 0) {
    throw new InvalidBackboneError('fidelity needs at least one real image');
  }
  const quantization = options.quantization ?? 'int8-per-channel';
  const depthwise = new Set(graph.nodes.filter((n) => n.op === 'depthwise_conv2d').map((n) => n.kernel));

  const build = (mode: Quantization, id: string): BackbonePackage => {
    const { specs, data } = encodeWeights(weights, { mode, depthwise });
    const manifest: BackboneManifest = {
      schemaVersion: 1,
      id,
      description: options.description ?? '',
      format: 'headstart-graph',
      inputSize: options.inputSize,
      preprocessing: { resize: options.resize ?? 'center-crop', scale: folded.scale, offset: folded.offset },
      feature: { layer: folded.cut, pooling: options.pooling, dim: featureDim },
      quantization: mode,
      weightsSha256: sha256Hex(data),
      weightsBytes: data.byteLength,
      source: args.source,
      createdAt: (options.createdAt ?? new Date(0)).toISOString(),
    };
    return { manifest, graph, weightSpecs: specs, weights: data };
  };

  const reference = build('float32', `${options.id}-float32-reference`);
  const candidate = build(quantization, options.id);
  const ref = await args.reference(reference);
  const cand = await loadBackbone(candidate, { warmup: false });
  let cosines: number[];
  let headTop1Agreement: number | undefined;
  try {
    const fa = await ref.extract(options.fidelityImages);
    const fb = await cand.extract(options.fidelityImages);
    cosines = fa.map((f, i) => cosine(f, fb[i]!));
    if (options.fidelityLabels) headTop1Agreement = await headAgreement(fa, fb, options.fidelityLabels);
  } finally {
    ref.dispose();
    cand.dispose();
  }
  const cosineMean = cosines.reduce((a, b) => a + b, 0) / cosines.length;
  const cosineMin = Math.min(...cosines);
  const threshold = options.minCosineMean ?? 0.99;
  candidate.manifest.fidelity = {
    images: cosines.length,
    cosineMean,
    cosineMin,
    ...(headTop1Agreement !== undefined ? { headTop1Agreement } : {}),
    threshold,
  };
  if (!(cosineMean >= threshold)) {
    throw new FidelityError(
      `exported backbone '${options.id}' (${quantization}) has mean feature cosine ${cosineMean.toFixed(4)} ` +
        `(min ${cosineMin.toFixed(4)}) against its source on ${cosines.length} images, below the threshold ${threshold}`,
    );
  }
  return { pkg: candidate, cosines, float32Bytes: reference.weights.byteLength };
}

async function headAgreement(
  source: Float32Array[],
  exported: Float32Array[],
  labels: readonly string[],
): Promise<number> {
  const labelNames = [...new Set(labels)].sort();
  const dim = source[0]!.length;
  const flat = (rows: Float32Array[]) => {
    const out = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => {
      out.set(r, i * dim);
    });
    return out;
  };
  const { head } = await trainHead(
    {
      features: flat(source),
      dim,
      labels: labels.map((l) => labelNames.indexOf(l)),
      labelNames,
      ids: source.map((_, i) => sha256Hex(`fidelity-${i}`)),
    },
    { headTypes: ['softmax'], minPerLabel: 2 },
  );
  const model = await loadHead(head);
  try {
    const k = labelNames.length;
    const a = model.predict(flat(source), source.length);
    const b = model.predict(flat(exported), exported.length);
    const top = (p: Float32Array, i: number) => {
      let best = 0;
      for (let j = 1; j < k; j++) if (p[i * k + j]! > p[i * k + best]!) best = j;
      return best;
    };
    let same = 0;
    for (let i = 0; i < source.length; i++) if (top(a, i) === top(b, i)) same++;
    return same / source.length;
  } finally {
    model.dispose();
  }
}

export async function compareBackbones(
  a: Backbone,
  b: Backbone,
  images: readonly Uint8Array[],
): Promise<number[]> {
  const fa = await a.extract(images);
  const fb = await b.extract(images);
  return fa.map((f, i) => cosine(f, fb[i]!));
}
