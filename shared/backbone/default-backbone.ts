import type { BuiltInBackboneOptions, ExportResult } from './export-backbone.js';
import { buildMidBackbone, MID_INPUT_SIZE, midBackboneId } from './mid-backbone.js';

/**
 * The built-in default backbone: nsfwjs' 1.4-wide MobileNetV2 graph model cut at block 13, 2x2-grid pooled
 * (issue 14: about ten points over MobileNetV2 1.0 on clothing-small, at a lower latency; see README, "The
 * backbone"). A store keeps the default it names (`backbones/default.json`); moving it to this one is
 * `headstart backbone migrate`.
 */
export function defaultBackboneId(): string {
  return midBackboneId();
}

export const DEFAULT_INPUT_SIZE = MID_INPUT_SIZE;

/**
 * What to tell someone whose photo is over a size limit. It names the default's input rather than a
 * maximum, because an imported backbone may take more.
 */
export const DOWNSCALE_HINT = `photos are resized to the backbone's input, ${DEFAULT_INPUT_SIZE} px for the default backbone, so about 512 px on the long side loses nothing`;

/** Builds the default backbone from the pinned nsfwjs package; deterministic (same bytes, id and sha256). */
export function buildDefaultBackbone(options: BuiltInBackboneOptions): Promise<ExportResult> {
  return buildMidBackbone(options);
}
