import { z } from 'zod';
import {
  createOutlierDetector,
  OUTLIER_METHODS,
  type OutlierDetector,
  type OutlierParams,
  usesDoubt,
} from './outlier-detector.js';
import { OutlierError } from './outlier-errors.js';
import { createSoftmaxOutlierDetector } from './softmax-outlier.js';

/** The float arrays of a detector, in this order, concatenated as little-endian float32 in its weights file. */
const ARRAYS = ['mean', 'std', 'basis', 'variance', 'classMeans', 'whitener', 'neighbours'] as const;

const descriptorSchema = z.object({
  format: z.literal('headstart-outlier-v1'),
  method: z.enum(OUTLIER_METHODS as [OutlierParams['method'], ...OutlierParams['method'][]]),
  pool: z
    .tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()])
    .optional(),
  sketch: z
    .object({
      inputDim: z.number().int().positive(),
      keep: z.number().int().nonnegative(),
      sketch: z.number().int().nonnegative(),
      seed: z.number().int(),
    })
    .optional(),
  dim: z.number().int().positive(),
  k: z.number().int().positive(),
  scales: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  neighbour: z.number().int().nonnegative(),
  doubtScale: z.number().positive().optional(),
  threshold: z.number().nullable(),
  /** Float count of each array in ARRAYS. */
  lengths: z.record(z.enum(ARRAYS), z.number().int().nonnegative()),
});

/** The `msp` detector's descriptor: nothing fitted, so its weights file is empty. */
const softmaxSchema = z.object({
  format: z.literal('headstart-outlier-v1'),
  method: z.literal('msp'),
  dim: z.number().int().positive(),
  labels: z.number().int().min(2),
  threshold: z.number().nullable(),
});

/** A detector as a small JSON descriptor and one float32 weights file. */
export function encodeOutlierDetector(detector: OutlierDetector): { json: string; weights: Uint8Array } {
  const p = detector.params;
  if (p.method === 'msp') {
    const descriptor = { format: 'headstart-outlier-v1', ...p };
    return { json: JSON.stringify(softmaxSchema.parse(descriptor)), weights: new Uint8Array(0) };
  }
  const lengths = Object.fromEntries(ARRAYS.map((a) => [a, p[a].length]));
  const total = ARRAYS.reduce((s, a) => s + p[a].length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const a of ARRAYS) {
    out.set(p[a], at);
    at += p[a].length;
  }
  const descriptor = {
    format: 'headstart-outlier-v1',
    method: p.method,
    ...(p.pool ? { pool: p.pool } : {}),
    ...(p.sketch ? { sketch: p.sketch } : {}),
    dim: p.dim,
    k: p.k,
    scales: p.scales,
    neighbour: p.neighbour,
    ...(p.doubtScale === undefined ? {} : { doubtScale: p.doubtScale }),
    threshold: p.threshold,
    lengths,
  };
  return { json: JSON.stringify(descriptor), weights: new Uint8Array(out.buffer) };
}

/** The detector back from its files; any inconsistency is an OutlierError naming it. */
export function decodeOutlierDetector(json: Uint8Array, weights: Uint8Array): OutlierDetector {
  let d: z.infer<typeof descriptorSchema> | undefined;
  let softmax: z.infer<typeof softmaxSchema> | undefined;
  try {
    const raw: unknown = JSON.parse(new TextDecoder().decode(json));
    if ((raw as { method?: unknown } | null)?.method === 'msp') softmax = softmaxSchema.parse(raw);
    else d = descriptorSchema.parse(raw);
  } catch (cause) {
    throw new OutlierError(
      'outlier_invalid',
      `the outlier detector's descriptor is malformed: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (softmax) return decodeSoftmax(softmax, weights);
  if (!d) throw new OutlierError('outlier_invalid', "the outlier detector's descriptor is missing");
  const want = { mean: d.dim, std: d.dim, basis: d.k * d.dim, variance: d.k, whitener: d.k * d.k };
  for (const [name, n] of Object.entries(want)) {
    if (d.lengths[name as keyof typeof want] !== n) {
      throw new OutlierError(
        'outlier_invalid',
        `the outlier detector's ${name} has ${d.lengths[name as keyof typeof want]} values, expected ${n}`,
      );
    }
  }
  const total = ARRAYS.reduce((s, a) => s + (d.lengths[a] ?? 0), 0);
  if (weights.byteLength !== total * 4) {
    throw new OutlierError(
      'outlier_invalid',
      `the outlier detector's weights have ${weights.byteLength} bytes, its descriptor needs ${total * 4}`,
    );
  }
  if ((d.lengths.classMeans ?? 0) % d.k !== 0 || (d.lengths.neighbours ?? 0) % d.k !== 0) {
    throw new OutlierError(
      'outlier_invalid',
      `the outlier detector's class means or neighbours are not rows of ${d.k}`,
    );
  }
  const floats = new Float32Array(weights.slice().buffer);
  const arrays = {} as Record<(typeof ARRAYS)[number], Float32Array>;
  let at = 0;
  for (const a of ARRAYS) {
    const n = d.lengths[a] ?? 0;
    arrays[a] = floats.slice(at, at + n);
    at += n;
  }
  if (d.pool && d.pool[2] !== d.dim) {
    throw new OutlierError(
      'outlier_invalid',
      `the outlier detector pools to ${d.pool[2]} channels but scores ${d.dim}`,
    );
  }
  if (usesDoubt(d.method) && d.doubtScale === undefined) {
    throw new OutlierError('outlier_invalid', `the ${d.method} outlier detector has no doubtScale`);
  }
  if (d.sketch && d.sketch.keep + d.sketch.sketch !== d.dim) {
    throw new OutlierError(
      'outlier_invalid',
      `the outlier detector sketches to ${d.sketch.keep + d.sketch.sketch} columns but scores ${d.dim}`,
    );
  }
  return createOutlierDetector({
    method: d.method,
    ...(d.pool ? { pool: d.pool } : {}),
    ...(d.sketch ? { sketch: d.sketch } : {}),
    dim: d.dim,
    k: d.k,
    scales: d.scales,
    neighbour: d.neighbour,
    ...(d.doubtScale === undefined ? {} : { doubtScale: d.doubtScale }),
    threshold: d.threshold,
    ...arrays,
  });
}

function decodeSoftmax(d: z.infer<typeof softmaxSchema>, weights: Uint8Array): OutlierDetector {
  if (weights.byteLength !== 0) {
    throw new OutlierError(
      'outlier_invalid',
      `the softmax outlier detector has no weights, but its weights file has ${weights.byteLength} bytes`,
    );
  }
  const { format: _format, ...params } = d;
  return createSoftmaxOutlierDetector(params);
}
