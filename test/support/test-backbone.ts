import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BackbonePackage,
  buildDefaultBackbone,
  DEFAULT_INPUT_SIZE,
  defaultBackboneId,
  parseBackbone,
  serializeBackbone,
} from '../../shared/backbone/index.js';
import { NSFWJS_VERSION } from '../../shared/backbone/nsfwjs-source.js';
import { decodeImage } from '../../shared/image/index.js';
import { clothingMini } from './fixtures.js';

/**
 * A backbone package built once per machine and cached in the OS temp dir: building is deterministic, and sharing
 * the result saves each test file the few seconds of folding and fidelity checks. `build` gets the fidelity photos,
 * decoded at `inputSize` (default: the default backbone's).
 */
export async function cachedBackbonePackage(
  id: string,
  build: (fidelityImages: Uint8Array[]) => Promise<BackbonePackage>,
  options: { inputSize?: number } = {},
): Promise<BackbonePackage> {
  const dir = join(tmpdir(), 'headstart-test-backbones', `${NSFWJS_VERSION}-${id}`);
  const json = join(dir, 'backbone.json');
  const bin = join(dir, 'weights.bin');
  if (existsSync(json) && existsSync(bin)) {
    try {
      return parseBackbone(readFileSync(json), new Uint8Array(readFileSync(bin)));
    } catch {
      // a stale or partial cache: rebuild below
    }
  }
  const photos = await Promise.all(
    clothingMini('eval')
      .filter((_, i) => i % 4 === 0)
      .map(async (f) => (await decodeImage(f.bytes, { size: options.inputSize ?? DEFAULT_INPUT_SIZE })).data),
  );
  const pkg = await build(photos);
  const out = serializeBackbone(pkg);
  mkdirSync(dir, { recursive: true });
  const suffix = `.${process.pid}.tmp`;
  writeFileSync(bin + suffix, out.weights);
  writeFileSync(json + suffix, out.json);
  renameSync(bin + suffix, bin);
  renameSync(json + suffix, json);
  return pkg;
}

let memo: Promise<BackbonePackage> | undefined;

/** The default backbone, built once per machine. */
export function testBackbone(): Promise<BackbonePackage> {
  memo ??= cachedBackbonePackage(
    defaultBackboneId(),
    async (fidelityImages) => (await buildDefaultBackbone({ fidelityImages })).pkg,
  );
  return memo;
}
