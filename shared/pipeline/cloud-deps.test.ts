import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordingReads } from '../../test/support/store-wrappers.js';
import { tinyTextBackbone } from '../../test/support/text-project.js';
import { layout } from '../layout/index.js';
import { createFsStore } from '../store/index.js';
import { saveTextBackbone, setDefaultTextBackbone, TextBackboneNotFoundError } from '../text/index.js';
import { textBackboneFromStore, textTrainingBackboneFromStore } from './cloud-deps.js';

const fsStore = () => createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-cloud-deps-')) });

describe('the cloud functions and the deployed text backbone', () => {
  it("gives training the default text backbone's id, sha256, width and dense width from its pointer and manifest alone", async () => {
    const base = fsStore();
    const tiny = await tinyTextBackbone();
    await saveTextBackbone(base, tiny.pkg);
    await setDefaultTextBackbone(base, tiny.pkg.manifest.id);
    const { store, reads } = recordingReads(base);
    const found = await textTrainingBackboneFromStore(store)();
    expect(found).toEqual({
      id: tiny.pkg.manifest.id,
      weightsSha256: tiny.pkg.manifest.weightsSha256,
      featureDim: tiny.backbone.featurizer.dim,
      denseDim: tiny.backbone.featurizer.denseDim,
    });
    // The training role may read these two keys and not the weights (infra/bucket-access.ts).
    expect(reads.sort()).toEqual(
      [
        layout.defaultTextBackbonePointer,
        layout.textBackbone(tiny.pkg.manifest.id, 'text-backbone.json'),
      ].sort(),
    );
  });

  it('fails a text extraction while the bucket names no text backbone, and loads it once one is deployed', async () => {
    const store = fsStore();
    const load = textBackboneFromStore(store);
    await expect(load()).rejects.toBeInstanceOf(TextBackboneNotFoundError);
    const tiny = await tinyTextBackbone();
    await saveTextBackbone(store, tiny.pkg);
    await setDefaultTextBackbone(store, tiny.pkg.manifest.id);
    expect((await load()).manifest.id).toBe(tiny.pkg.manifest.id);
    expect(await textTrainingBackboneFromStore(store)()).toMatchObject({ id: tiny.pkg.manifest.id });
  });
});
