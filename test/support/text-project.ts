import { readFileSync } from 'node:fs';
import type { Backbone } from '../../shared/backbone/index.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { layout } from '../../shared/layout/index.js';
import { createUploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { createRetrainRequester } from '../../shared/pipeline/retrain-requests.js';
import {
  createProjectTrainer,
  textTrainingBackbone,
  trainingBackbone,
} from '../../shared/pipeline/train-project.js';
import type { ObjectStore } from '../../shared/store/index.js';
import {
  buildTextBackbone,
  parseCsv,
  readWinkVectors,
  saveTextBackbone,
  type TextBackbone,
  type TextBackbonePackage,
} from '../../shared/text/index.js';
import type { TrainOptions } from '../../shared/train/index.js';
import { nextSequencer } from './s3-events.js';

/** A text backbone over the tiny word-vector fixture (4 dimensions): fast to build, same recipe as the real one. */
export async function tinyTextBackbone(): Promise<{ pkg: TextBackbonePackage; backbone: TextBackbone }> {
  const json = readFileSync(new URL('../fixtures/text/tiny-vectors.json', import.meta.url), 'utf8');
  async function* one() {
    yield json;
  }
  const { pkg, backbone } = await buildTextBackbone({
    source: readWinkVectors(one(), { maxRank: 1000, dim: 4 }),
    sourceId: 'tiny',
    dim: 4,
  });
  return { pkg, backbone };
}

/**
 * 40 texts of each of three intents, made from parts: enough for a validation split that calibrates an outlier
 * detector (the 36-row fixture's split is too small to), in the same words as the fixture.
 */
export function generatedIntentRows(): [string, string][] {
  const parts: Record<string, [string[], string[], string[]]> = {
    card_arrival: [
      ['Where is', 'When will I get', 'How long until I receive', 'Why have I not received'],
      ['my new card', 'the card I ordered', 'my replacement card', 'my debit card', 'the card you posted'],
      ['yet?', 'in the mail?'],
    ],
    exchange_rate: [
      ['What is', 'How do you set', 'Why did I get', 'Can you tell me'],
      [
        'the exchange rate',
        'the currency rate',
        'your conversion rate',
        'the euro to dollar rate',
        'the rate',
      ],
      ['today?', 'for this transfer?'],
    ],
    lost_card: [
      ['I lost', 'Someone stole', 'I cannot find', 'Please block'],
      ['my card', 'my wallet and card', 'my credit card', 'the card you sent', 'my bank card'],
      ['yesterday', 'on the train'],
    ],
  };
  return Object.entries(parts).flatMap(([label, [a, b, c]]) =>
    a.flatMap((x) => b.flatMap((y) => c.map((z) => [`${x} ${y} ${z}`, label] as [string, string]))),
  );
}

/** The rows of test/fixtures/text/intents.csv: [text, label]. */
export function intentRows(): [string, string][] {
  const csv = readFileSync(new URL('../fixtures/text/intents.csv', import.meta.url), 'utf8');
  return parseCsv(csv)
    .slice(1)
    .filter((r) => r.length === 2) as [string, string][];
}

/**
 * Saves the text backbone, then uploads each [text, label] row as `uploads/<project>/<label>/row-<i>.txt` and
 * extracts it as the pipeline does, one at a time, asking for one retrain; returns the dataset index.
 */
export async function uploadTextRows(
  store: ObjectStore,
  project: string,
  input: {
    backbone: Backbone;
    text: { pkg: TextBackbonePackage; backbone: TextBackbone };
    rows: readonly (readonly [string, string])[];
  },
): Promise<DatasetIndex> {
  await saveTextBackbone(store, input.text.pkg);
  const index = createDatasetIndex(store);
  const retrain = createRetrainRequester(store, { notify: async () => {} });
  const extractor = createUploadExtractor({
    store,
    backbone: input.backbone,
    index,
    textBackbone: async () => input.text.backbone,
    requestRetrain: (p) => retrain.request(p),
  });
  for (const [i, [body, label]] of input.rows.entries()) {
    const key = layout.upload(project, label, `row-${i}.txt`);
    await store.put(key, new TextEncoder().encode(body));
    const out = await extractor.handle({
      type: 'created',
      key,
      sequencer: nextSequencer(),
      eventTime: new Date().toISOString(),
    });
    if (out.status !== 'indexed') throw new Error(`row ${i} was not indexed: ${JSON.stringify(out)}`);
  }
  await retrain.flush();
  return index;
}

/**
 * Uploads the intents fixture into `project` as .txt examples, extracts them, and trains and promotes a text
 * version; the text backbone is saved into the store first (as the edge reads it from there). Returns the version.
 */
export async function publishTextModel(
  store: ObjectStore,
  project: string,
  input: {
    backbone: Backbone;
    text: { pkg: TextBackbonePackage; backbone: TextBackbone };
    /** [text, label] rows; default the intents fixture. */
    rows?: [string, string][];
    trainOptions?: TrainOptions;
  },
): Promise<string> {
  const text = input.text.backbone;
  const index = await uploadTextRows(store, project, { ...input, rows: input.rows ?? intentRows() });
  const outcome = await createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(input.backbone),
    ...(input.trainOptions ? { trainOptions: input.trainOptions } : {}),
    textBackbone: async () => textTrainingBackbone(text.manifest),
  }).run(project, { ignoreQuietWindow: true });
  if (outcome.status !== 'promoted') throw new Error(`the text project was not promoted: ${outcome.status}`);
  return outcome.version;
}
