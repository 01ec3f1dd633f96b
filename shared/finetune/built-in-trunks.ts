import { defaultBackboneId } from '../backbone/default-backbone.js';
import type { ExportResult } from '../backbone/export-backbone.js';
import { MID_INPUT_SIZE } from '../backbone/mid-backbone.js';
import { MNV2_INPUT_SIZE, mnv2BackboneId } from '../backbone/mnv2-backbone.js';
import { buildMidFineTuning, buildMidSegment, midTrunkId } from './mid-trunk.js';
import {
  buildMnv2FineTuning,
  type FineTuningBuild,
  mnv2TrunkId,
  type TrunkOptions,
} from './spatial-trunk.js';
import type { TopSegment } from './top-segment.js';

/** How a built-in backbone fine-tunes: its trunk's id and how to build the trunk with the segment above it. */
interface BuiltInTrunk {
  trunkId: string;
  /** The input size its trunk (and backbone) take: the size fidelity photos are decoded at. */
  inputSize: number;
  build(options: TrunkOptions): Promise<FineTuningBuild>;
}

/**
 * Every built-in backbone that can fine-tune, by backbone id. The previous default stays here so stores made
 * with it keep fine-tuning; imported backbones have no trunk, so their projects train heads only.
 */
function builtInTrunks(): Map<string, BuiltInTrunk> {
  return new Map([
    [
      defaultBackboneId(),
      {
        trunkId: midTrunkId(),
        inputSize: MID_INPUT_SIZE,
        build: buildMidFineTuning,
      },
    ],
    [
      mnv2BackboneId(),
      {
        trunkId: mnv2TrunkId(),
        inputSize: MNV2_INPUT_SIZE,
        build: buildMnv2FineTuning,
      },
    ],
  ]);
}

/** The fine-tuning trunk of a backbone, by id, or undefined when it has none. */
export function trunkIdFor(backboneId: string): string | undefined {
  return builtInTrunks().get(backboneId)?.trunkId;
}

/** The input size of a built-in backbone that fine-tunes, or undefined. */
export function builtInInputSize(backboneId: string): number | undefined {
  return builtInTrunks().get(backboneId)?.inputSize;
}

/** Builds the trunk and segment of a built-in backbone; undefined for a backbone that has no trunk. */
export function buildFineTuningFor(
  backboneId: string,
  options: TrunkOptions,
): Promise<FineTuningBuild> | undefined {
  return builtInTrunks().get(backboneId)?.build(options);
}

function defaultTrunk(): BuiltInTrunk {
  return builtInTrunks().get(defaultBackboneId())!;
}

/** The default backbone's trunk id. */
export const trunkBackboneId = (): string => defaultTrunk().trunkId;
/** The default backbone's trunk and segment. */
export const buildDefaultFineTuning = (options: TrunkOptions): Promise<FineTuningBuild> =>
  defaultTrunk().build(options);
/** The default backbone's trunk alone. */
export const buildDefaultTrunk = async (options: TrunkOptions): Promise<ExportResult> =>
  (await buildDefaultFineTuning(options)).trunk;
/** The default backbone's segment alone, without building (and fidelity-checking) its trunk. */
export const buildDefaultSegment = async (): Promise<TopSegment> => buildMidSegment();
