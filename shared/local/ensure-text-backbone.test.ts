import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { layout } from '../layout/index.js';
import { openStore } from '../store/index.js';
import {
  readDefaultTextBackboneId,
  readTextBackbone,
  readWinkVectors,
  type TextBackboneSource,
} from '../text/index.js';
import { ensureTextBackbone } from './ensure-text-backbone.js';

const json = readFileSync(new URL('../../test/fixtures/text/tiny-vectors.json', import.meta.url), 'utf8');

function tinySource(reads: { count: number }): TextBackboneSource {
  return {
    id: 'tiny',
    dim: 4,
    words: (maxRank) => {
      reads.count++;
      async function* one() {
        yield json;
      }
      return readWinkVectors(one(), { maxRank, dim: 4 });
    },
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fsStore() {
  const root = mkdtempSync(join(tmpdir(), 'text-backbone-'));
  dirs.push(root);
  return openStore({ kind: 'fs', root });
}

describe('ensureTextBackbone', () => {
  it('builds the text backbone from its source once, publishes it as the default and loads it back', async () => {
    const store = fsStore();
    const reads = { count: 0 };
    const id = await ensureTextBackbone(store, { source: tinySource(reads) });
    expect(id).toBe('tiny.v45.i8r.sif2.w2c35h14');
    expect(await readDefaultTextBackboneId(store)).toBe(id);
    expect(await ensureTextBackbone(store, { source: tinySource(reads) })).toBe(id);
    expect(reads.count).toBe(1);
    const backbone = await readTextBackbone(store, id);
    expect(backbone.manifest.fidelity.cosineMin).toBeGreaterThan(0.999);
    expect(backbone.manifest.vocabulary).toEqual({ words: 45, dim: 4 });
    expect(backbone.featurizer.featurize('my card was stolen').dim).toBe(4 + 16_384);
  });

  it('refuses to load a text backbone whose weights do not match the manifest', async () => {
    const store = fsStore();
    const id = await ensureTextBackbone(store, { source: tinySource({ count: 0 }) });
    const key = layout.textBackbone(id, 'text-weights.bin');
    const weights = (await store.get(key))!.body.slice();
    weights[0] = weights[0]! ^ 1;
    await store.put(key, weights);
    await expect(readTextBackbone(store, id)).rejects.toMatchObject({ code: 'invalid_text_backbone' });
  });
});
