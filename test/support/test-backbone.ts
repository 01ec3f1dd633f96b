import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BackbonePackage,
  buildDefaultBackbone,
  defaultBackboneId,
  parseBackbone,
  serializeBackbone,
} from '../../shared/backbone/index.js';
import { NSFWJS_VERSION } from '../../shared/backbone/nsfwjs-source.js';
import { decodeImage } from '../../shared/image/index.js';
import { clothingMini } from './fixtures.js';

let memo: Promise<BackbonePackage> | undefined;

/**
 * The default backbone, built once and cached in the OS temp dir: building is deterministic, and sharing the
 * result saves each test file the few seconds of folding and fidelity checks.
 */
export function testBackbone(): Promise<BackbonePackage> {
  memo ??= (async () => {
    const dir = join(tmpdir(), 'headstart-test-backbones', `${NSFWJS_VERSION}-${defaultBackboneId()}`);
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
        .map(async (f) => (await decodeImage(f.bytes, { size: 224 })).data),
    );
    const { pkg } = await buildDefaultBackbone({ fidelityImages: photos });
    const out = serializeBackbone(pkg);
    mkdirSync(dir, { recursive: true });
    const suffix = `.${process.pid}.tmp`;
    writeFileSync(bin + suffix, out.weights);
    writeFileSync(json + suffix, out.json);
    renameSync(bin + suffix, bin);
    renameSync(json + suffix, json);
    return pkg;
  })();
  return memo;
}
