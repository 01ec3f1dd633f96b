import { z } from 'zod';
import type { BackbonePackage } from '../backbone/backbone-package.js';
import { BACKBONE_JSON, sha256Hex } from '../backbone/backbone-package.js';
import { saveBackbone } from '../backbone/backbone-store.js';
import { headstartGraphSchema } from '../backbone/headstart-graph.js';
import { decodeWeights, encodeWeights, weightSpecSchema } from '../backbone/quantize.js';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import { InvalidTopError, UnsupportedTopError } from './finetune-errors.js';
import type { TopSegment } from './top-segment.js';

/**
 * The pretrained blocks a trunk leaves out, stored beside the trunk (`backbones/<trunk id>/segment.json` and
 * `segment.bin`) so the training function starts fine-tuning from them without the source model. float32: these
 * are the weights training moves, so they must not carry the trunk's int8 rounding.
 */
export const SEGMENT_JSON = 'segment.json';
export const SEGMENT_WEIGHTS = 'segment.bin';

const segmentDescriptorSchema = z.object({
  schemaVersion: z.literal(1),
  format: z.literal('headstart-top-segment'),
  trunkId: z.string().min(1),
  trunkCut: z.string().min(1),
  featureCut: z.string().min(1),
  inputShape: z.tuple([
    z.number().int().positive(),
    z.number().int().positive(),
    z.number().int().positive(),
  ]),
  featureDim: z.number().int().positive(),
  /** Segments stored before grid pooling existed pool globally. */
  pooling: z.enum(['avg', 'grid2']).default('avg'),
  graph: headstartGraphSchema,
  weightSpecs: z.array(weightSpecSchema),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export function serializeSegment(
  segment: TopSegment,
  trunkId: string,
): { json: string; weights: Uint8Array } {
  const { specs, data } = encodeWeights(segment.weights, { mode: 'float32' });
  const descriptor = segmentDescriptorSchema.parse({
    schemaVersion: 1,
    format: 'headstart-top-segment',
    trunkId,
    trunkCut: segment.trunkCut,
    featureCut: segment.featureCut,
    inputShape: segment.inputShape,
    featureDim: segment.featureDim,
    pooling: segment.pooling,
    graph: { input: 'input', output: segment.output, nodes: segment.nodes },
    weightSpecs: specs,
    weightsSha256: sha256Hex(data),
  });
  return { json: JSON.stringify(descriptor), weights: data };
}

/** Parses a stored segment, checking its weights' sha256 and that it belongs to `trunkId`. */
export function parseSegment(json: Uint8Array | string, weights: Uint8Array, trunkId: string): TopSegment {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof json === 'string' ? json : new TextDecoder().decode(json));
  } catch (cause) {
    throw new InvalidTopError(`${SEGMENT_JSON} of '${trunkId}' is not valid JSON`, { cause });
  }
  const parsed = segmentDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidTopError(
      `${SEGMENT_JSON} of '${trunkId}' is invalid: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  const d = parsed.data;
  if (d.trunkId !== trunkId) {
    throw new InvalidTopError(`${SEGMENT_JSON} under '${trunkId}' belongs to trunk '${d.trunkId}'`);
  }
  const actual = sha256Hex(weights);
  if (actual !== d.weightsSha256) {
    throw new InvalidTopError(
      `${SEGMENT_WEIGHTS} of '${trunkId}' has sha256 ${actual}, ${SEGMENT_JSON} says ${d.weightsSha256}`,
    );
  }
  return {
    trunkCut: d.trunkCut,
    featureCut: d.featureCut,
    inputShape: d.inputShape,
    nodes: d.graph.nodes,
    weights: decodeWeights(d.weightSpecs, weights),
    output: d.graph.output,
    featureDim: d.featureDim,
    pooling: d.pooling,
  };
}

/**
 * Publishes a trunk with its segment: the segment first, then the trunk itself, whose backbone.json is what
 * makes it exist (saveBackbone's order), so a reader that finds the trunk also finds its segment.
 */
export async function saveTrunk(
  store: ObjectStore,
  trunk: BackbonePackage,
  segment: TopSegment,
): Promise<void> {
  const id = trunk.manifest.id;
  if (segment.trunkCut.toLowerCase() !== trunk.manifest.feature.layer.toLowerCase()) {
    throw new UnsupportedTopError(
      `segment starts at '${segment.trunkCut}'; trunk '${id}' ends at '${trunk.manifest.feature.layer}'`,
    );
  }
  const { json, weights } = serializeSegment(segment, id);
  await store.put(layout.backbone(id, SEGMENT_WEIGHTS), weights, { contentType: 'application/octet-stream' });
  await store.put(layout.backbone(id, SEGMENT_JSON), json, { contentType: 'application/json' });
  await saveBackbone(store, trunk);
}

/** The segment stored with trunk `trunkId`, or undefined when that trunk (or its segment) is not published. */
export async function readSegment(store: ObjectStore, trunkId: string): Promise<TopSegment | undefined> {
  const [trunk, json, weights] = await Promise.all([
    store.head(layout.backbone(trunkId, BACKBONE_JSON)),
    store.get(layout.backbone(trunkId, SEGMENT_JSON)),
    store.get(layout.backbone(trunkId, SEGMENT_WEIGHTS)),
  ]);
  if (!trunk || !json || !weights) return undefined;
  return parseSegment(json.body, weights.body, trunkId);
}
