import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { nextSequencer } from '../../test/support/s3-events.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { type Backbone, loadBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { layout } from '../layout/index.js';
import { readPointer, readVersion } from '../models/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { buildTextBackbone, parseCsv, readWinkVectors, type TextBackbone } from '../text/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createUploadExtractor } from './extract-uploads.js';
import { createRetrainRequester } from './retrain-requests.js';
import { createProjectTrainer, textTrainingBackbone, trainingBackbone } from './train-project.js';

let backbone: Backbone;
let text: TextBackbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
  const json = readFileSync(new URL('../../test/fixtures/text/tiny-vectors.json', import.meta.url), 'utf8');
  async function* one() {
    yield json;
  }
  text = (
    await buildTextBackbone({
      source: readWinkVectors(one(), { maxRank: 1000, dim: 4 }),
      sourceId: 'tiny',
      dim: 4,
    })
  ).backbone;
});

const rows = parseCsv(readFileSync(new URL('../../test/fixtures/text/intents.csv', import.meta.url), 'utf8'))
  .slice(1)
  .filter((r) => r.length === 2);

async function uploadIntents(store: ObjectStore): Promise<void> {
  const index = createDatasetIndex(store);
  const retrain = createRetrainRequester(store, { notify: async () => {} });
  const extractor = createUploadExtractor({
    store,
    backbone,
    index,
    textBackbone: async () => text,
    requestRetrain: (p) => retrain.request(p),
  });
  for (const [i, [body, label]] of rows.entries()) {
    const key = layout.upload('intents', label!, `row-${i}.txt`);
    await store.put(key, new TextEncoder().encode(body));
    const out = await extractor.handle({
      type: 'created',
      key,
      sequencer: nextSequencer(),
      eventTime: new Date().toISOString(),
    });
    expect(out.status).toBe('indexed');
  }
  await retrain.flush();
}

describe('training a text project', () => {
  it('trains a softmax head on the cached sentence features and promotes it as a version', async () => {
    const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-text-train-')) });
    await uploadIntents(store);
    const trainer = createProjectTrainer({
      store,
      index: createDatasetIndex(store),
      backbone: trainingBackbone(backbone),
      textBackbone: async () => textTrainingBackbone(text.manifest),
    });
    const outcome = await trainer.run('intents', { ignoreQuietWindow: true });
    expect(outcome).toMatchObject({ status: 'promoted', mode: 'head' });
    if (outcome.status !== 'promoted') throw new Error(outcome.status);
    expect(outcome.metrics.accuracy).toBeGreaterThan(0.5);
    const pointer = await readPointer(store, 'intents');
    expect(pointer?.pointer.version).toBe(outcome.version);
    const { manifest } = await readVersion(store, 'intents', outcome.version, { forServing: true });
    expect(manifest.backbone).toMatchObject({ id: text.manifest.id, featureDim: text.featurizer.dim });
    expect(manifest.labels).toEqual(['card_arrival', 'exchange_rate', 'lost_card']);
    // The same dataset again trains nothing.
    const again = await createProjectTrainer({
      store,
      index: createDatasetIndex(store),
      backbone: trainingBackbone(backbone),
      textBackbone: async () => textTrainingBackbone(text.manifest),
    }).run('intents', { ignoreQuietWindow: true });
    expect(again.status).toMatch(/unchanged|up_to_date/);
  });
});
