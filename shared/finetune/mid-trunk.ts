import {
  buildMidBackbone,
  MID_CUT,
  MID_INPUT_SIZE,
  MID_PREFIX,
  midBackboneId,
} from '../backbone/mid-backbone.js';
import { NSFWJS_PREPROCESSING, readNsfwjsModel } from '../backbone/nsfwjs-source.js';
import { type FineTuningBuild, TRUNK_MIN_COSINE_MEAN, type TrunkOptions } from './spatial-trunk.js';
import { foldGraphTopSegment, type TopSegment } from './top-segment.js';

/**
 * Where fine-tuning cuts the 1.4-wide MobileNetV2 (the default backbone): the frozen trunk ends at block 12's
 * output (10x10x136 at 160 px) and the top retrains block 13's expansion and depthwise convolution up to the
 * head-only cut, pooled on the same 2x2 grid, so the untrained top is exactly the head-only model. The same
 * place as on MobileNetV2 1.0, where it was measured (spatial-trunk.ts); `npm run bench:finetune` re-measures it.
 */
export const MID_TRUNK_CUT = 'expanded_conv_12/add';

/** The trunk's id: the backbone's id scheme at the trunk's cut, unpooled (`mnv2x14-nsfwjs.ec12-add.160.none.i8c`). */
export function midTrunkId(options: { inputSize?: number } = {}): string {
  return midBackboneId({ cut: MID_TRUNK_CUT, pooling: 'none', ...options });
}

/** Block 13 of the 1.4-wide MobileNetV2 in float32 from the source graph, between the trunk and the feature cut. */
export function buildMidSegment(options: { inputSize?: number } = {}): TopSegment {
  return foldGraphTopSegment(readNsfwjsModel('mobilenet_v2_mid'), {
    trunkCut: MID_TRUNK_CUT,
    featureCut: MID_CUT,
    pooling: 'grid2',
    inputSize: options.inputSize ?? MID_INPUT_SIZE,
    prefix: MID_PREFIX,
    inputScale: NSFWJS_PREPROCESSING.scale,
    inputOffset: NSFWJS_PREPROCESSING.offset,
  });
}

/** The 1.4-wide trunk (int8, unpooled, checked against the source) and the segment above it. */
export async function buildMidFineTuning(options: TrunkOptions): Promise<FineTuningBuild> {
  const trunk = await buildMidBackbone({
    ...options,
    cut: MID_TRUNK_CUT,
    pooling: 'none',
    minCosineMean: options.minCosineMean ?? TRUNK_MIN_COSINE_MEAN,
  });
  return { trunk, segment: buildMidSegment(options) };
}
