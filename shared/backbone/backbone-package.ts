import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BackboneIntegrityError, InvalidBackboneError } from './backbone-errors.js';
import { type BackboneManifest, backboneManifestSchema } from './backbone-manifest.js';
import { type HeadstartGraph, headstartGraphSchema } from './headstart-graph.js';
import { type WeightSpec, weightSpecSchema } from './quantize.js';

/** A backbone as stored: `backbone.json` (manifest, graph, weight layout) beside `weights.bin`. */
export interface BackbonePackage {
  manifest: BackboneManifest;
  /** format 'headstart-graph' */
  graph?: HeadstartGraph;
  weightSpecs?: WeightSpec[];
  /** formats 'tfjs-layers' and 'tfjs-graph': model.json's topology and weight manifest, passed to tfjs as they are. */
  tfjs?: { modelTopology: unknown; weightSpecs: unknown[] };
  weights: Uint8Array;
}

export const BACKBONE_JSON = 'backbone.json';
export const BACKBONE_WEIGHTS = 'weights.bin';

const descriptorSchema = z
  .object({
    manifest: backboneManifestSchema,
    graph: headstartGraphSchema.optional(),
    weightSpecs: z.array(weightSpecSchema).optional(),
    tfjs: z.object({ modelTopology: z.unknown(), weightSpecs: z.array(z.unknown()) }).optional(),
  })
  .superRefine((d, ctx) => {
    if (d.manifest.format === 'headstart-graph' && (!d.graph || !d.weightSpecs)) {
      ctx.addIssue({ code: 'custom', message: "format 'headstart-graph' needs graph and weightSpecs" });
    }
    if (d.manifest.format !== 'headstart-graph' && !d.tfjs) {
      ctx.addIssue({ code: 'custom', message: `format '${d.manifest.format}' needs tfjs.modelTopology` });
    }
  });

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function serializeBackbone(pkg: BackbonePackage): { json: string; weights: Uint8Array } {
  const { weights, ...descriptor } = pkg;
  return { json: JSON.stringify(descriptor), weights };
}

/**
 * Parses and checks a stored backbone. The weights must hash to the manifest's sha256: a truncated or swapped
 * weights file would otherwise load and silently produce different features.
 */
export function parseBackbone(json: string | Uint8Array, weights: Uint8Array): BackbonePackage {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof json === 'string' ? json : new TextDecoder().decode(json));
  } catch (cause) {
    throw new InvalidBackboneError(`${BACKBONE_JSON} is not valid JSON`, { cause });
  }
  const parsed = descriptorSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidBackboneError(
      `${BACKBONE_JSON} is invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
      {
        cause: parsed.error,
      },
    );
  }
  const actual = sha256Hex(weights);
  if (actual !== parsed.data.manifest.weightsSha256) {
    throw new BackboneIntegrityError(
      `${BACKBONE_WEIGHTS} of backbone '${parsed.data.manifest.id}' has sha256 ${actual}, manifest says ${parsed.data.manifest.weightsSha256}`,
    );
  }
  return { ...parsed.data, weights } as BackbonePackage;
}
