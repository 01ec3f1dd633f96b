import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createSentenceFeaturizer,
  densify,
  type SentenceFeatureSpec,
  stackFeatures,
} from '../text/sentence-features.js';
import { buildWordTable } from '../text/word-table.js';
import { readWinkVectors } from '../text/word-vector-source.js';
import { initTf, tf } from '../tf/tf-runtime.js';
import { loadHead } from './head-model.js';
import { trainHead } from './train-head.js';

const here = (p: string) => new URL(`../../test/fixtures/text/${p}`, import.meta.url);

const SPEC: SentenceFeatureSpec = {
  pooling: 'mean',
  denseWeight: 1,
  buckets: 2048,
  wordNgrams: 2,
  charMin: 2,
  charMax: 5,
  wordWeight: 1,
  charWeight: 1,
};

async function featurizer() {
  async function* one() {
    yield readFileSync(here('tiny-vectors.json'), 'utf8');
  }
  const { table } = await buildWordTable(readWinkVectors(one(), { maxRank: 1000, dim: 4 }), 4);
  return createSentenceFeaturizer(SPEC, table);
}

function intents(): { text: string; label: string }[] {
  const lines = readFileSync(here('intents.csv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const m = /^(?:"((?:[^"]|"")*)"|([^,]*)),(.*)$/.exec(line)!;
    return { text: (m[1] ?? m[2]!).replace(/""/g, '"'), label: m[3]! };
  });
}

beforeAll(async () => {
  await initTf({ backend: 'wasm' });
});

describe('softmax head on sparse text features', () => {
  it('learns three intents from 12 sentences each and classifies sentences it never saw', async () => {
    const f = await featurizer();
    const rows = intents();
    const labelNames = [...new Set(rows.map((r) => r.label))].sort();
    const features = rows.map((r) => f.featurize(r.text));
    const before = tf.memory().numTensors;
    const result = await trainHead({
      features: new Float32Array(0),
      sparse: stackFeatures(features),
      dim: f.dim,
      labels: rows.map((r) => labelNames.indexOf(r.label)),
      labelNames,
      ids: rows.map((r) => createHash('sha256').update(r.text).digest('hex')),
    });
    expect(result.config.headType).toBe('softmax');
    expect(result.search.length).toBeGreaterThan(1);
    const head = await loadHead(result.head);
    const unseen = [
      ['someone stole my card', 'lost_card'],
      ['what is the rate for dollars to euro', 'exchange_rate'],
      ['when does my new card arrive', 'card_arrival'],
    ] as const;
    const x = new Float32Array(unseen.length * f.dim);
    unseen.forEach(([text], i) => {
      densify(f.featurize(text), x, i * f.dim);
    });
    const probs = head.predict(x, unseen.length);
    head.dispose();
    unseen.forEach(([, label], i) => {
      const row = Array.from(probs.subarray(i * 3, i * 3 + 3));
      expect(labelNames[row.indexOf(Math.max(...row))]).toBe(label);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses the MLP head for sparse rows', async () => {
    const f = await featurizer();
    const rows = intents();
    const labelNames = [...new Set(rows.map((r) => r.label))].sort();
    const err = await trainHead(
      {
        features: new Float32Array(0),
        sparse: stackFeatures(rows.map((r) => f.featurize(r.text))),
        dim: f.dim,
        labels: rows.map((r) => labelNames.indexOf(r.label)),
        labelNames,
        ids: rows.map((r) => createHash('sha256').update(r.text).digest('hex')),
      },
      { headTypes: ['mlp'] },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_training_input' });
  });
});
