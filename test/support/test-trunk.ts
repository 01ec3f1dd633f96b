import type { BackbonePackage } from '../../shared/backbone/index.js';
import { buildDefaultTrunk, trunkBackboneId } from '../../shared/finetune/index.js';
import { cachedBackbonePackage } from './test-backbone.js';

let memo: Promise<BackbonePackage> | undefined;

/** The default fine-tuning trunk (block_12_add, unpooled), built once per machine like the test backbone. */
export function testTrunk(): Promise<BackbonePackage> {
  memo ??= cachedBackbonePackage(
    trunkBackboneId(),
    async (fidelityImages) => (await buildDefaultTrunk({ fidelityImages })).pkg,
  );
  return memo;
}
