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
import { fitSoftmax } from './fit.js';
import { type HeadParams, loadHead } from './head-model.js';
import { createRng } from './numerics.js';
import { fitSparseSoftmax, predictSparse, type SparseFitData } from './sparse-fit.js';
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
    // Small sparse data searches every L2 with every AdaGrad step size, and the refit uses the chosen pair.
    expect(new Set(result.search.map((c) => `${c.l2}:${c.learningRate}`)).size).toBe(4);
    expect(result.search.map((c) => c.learningRate)).toEqual(expect.arrayContaining([1.5, 0.5]));
    expect(result.search).toContainEqual(
      expect.objectContaining({ l2: result.config.l2, learningRate: result.config.learningRate }),
    );
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

/** Sparse rows of `k` labels: each row has a few columns of its label's block and a few shared noise columns. */
function sparseProblem(options: { n: number; k: number; dim: number; seed: number }): SparseFitData {
  const { n, k, dim } = options;
  const rng = createRng(options.seed);
  const block = Math.floor(dim / (k + 1));
  const indptr = new Int32Array(n + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % k;
    const cols = new Set<number>();
    while (cols.size < 4) cols.add(y[i]! * block + Math.floor(rng() * block));
    while (cols.size < 7) cols.add(k * block + Math.floor(rng() * (dim - k * block)));
    // Some rows also carry a column of another label's block, so the problem is not separable.
    if (rng() < 0.3) cols.add(((y[i]! + 1) % k) * block + Math.floor(rng() * block));
    for (const c of [...cols].sort((a, b) => a - b)) {
      indices.push(c);
      values.push(0.5 + rng());
    }
    indptr[i + 1] = indices.length;
  }
  return {
    n,
    dim,
    k,
    indptr,
    indices: Int32Array.from(indices),
    values: Float32Array.from(values),
    y,
    w: new Float32Array(n).fill(1),
  };
}

function dense(d: SparseFitData): Float32Array {
  const x = new Float32Array(d.n * d.dim);
  for (let i = 0; i < d.n; i++) {
    for (let p = d.indptr[i]!; p < d.indptr[i + 1]!; p++) x[i * d.dim + d.indices[p]!] = d.values[p]!;
  }
  return x;
}

/** Mean cross-entropy + l2 * ||W||^2: the objective both fitters minimize. */
function objective(d: SparseFitData, params: HeadParams, l2: number): number {
  if (params.type !== 'softmax') throw new TypeError('softmax only');
  const probs = predictSparse(params, d);
  let loss = 0;
  for (let i = 0; i < d.n; i++) loss -= Math.log(probs[i * d.k + d.y[i]!]!);
  let norm = 0;
  for (const w of params.w) norm += w * w;
  return loss / d.n + l2 * norm;
}

describe('fitSparseSoftmax (AdaGrad on sparse rows)', () => {
  it('reaches the objective L-BFGS reaches on the same rows densified', () => {
    const data = sparseProblem({ n: 240, k: 4, dim: 60, seed: 3 });
    const l2 = 1e-3;
    const exact = fitSoftmax({ ...data, x: dense(data) }, undefined, {
      l2,
      maxIterations: 500,
      patience: 40,
      gradientTolerance: 1e-7,
    });
    const ada = fitSparseSoftmax(data, undefined, {
      l2,
      learningRate: 1.5,
      maxEpochs: 60,
      patience: 3,
      seed: 1,
    });
    const best = objective(data, exact.params, l2);
    const reached = objective(data, ada.params, l2);
    expect(reached).toBeGreaterThanOrEqual(best - 1e-4);
    expect(reached).toBeLessThan(best * 1.02);
    const a = predictSparse(ada.params, data);
    const b = predictSparse(exact.params, data);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(0.05);
  });

  it('applies the L2 penalty to columns a step does not touch: a stronger L2 gives smaller weights', () => {
    const data = sparseProblem({ n: 200, k: 3, dim: 40, seed: 5 });
    const norm = (l2: number) => {
      const { params } = fitSparseSoftmax(data, undefined, {
        l2,
        learningRate: 1.5,
        maxEpochs: 20,
        patience: 3,
        seed: 1,
      });
      if (params.type !== 'softmax') throw new TypeError('softmax only');
      return params.w.reduce((s, w) => s + w * w, 0);
    };
    const weak = norm(1e-5);
    const strong = norm(1e-2);
    expect(strong).toBeLessThan(weak * 0.5);
  });

  it('continues from a warm start: one pass over rows it never saw lowers their loss', () => {
    const all = sparseProblem({ n: 300, k: 3, dim: 80, seed: 9 });
    const part = (from: number, to: number): SparseFitData => {
      const offset = all.indptr[from]!;
      return {
        ...all,
        n: to - from,
        indptr: all.indptr.slice(from, to + 1).map((p) => p - offset),
        indices: all.indices.slice(offset, all.indptr[to]!),
        values: all.values.slice(offset, all.indptr[to]!),
        y: all.y.slice(from, to),
        w: all.w.slice(from, to),
      };
    };
    const seen = part(0, 150);
    const unseen = part(150, 300);
    const opts = { l2: 1e-4, learningRate: 1.5, patience: 3, seed: 1 };
    const first = fitSparseSoftmax(seen, unseen, { ...opts, maxEpochs: 5 });
    const continued = fitSparseSoftmax(all, undefined, { ...opts, maxEpochs: 1, warmStart: first.state });
    expect(first.state.params).toBe(first.params);
    expect(objective(unseen, continued.params, 0)).toBeLessThan(objective(unseen, first.params, 0));
    // It continued rather than restarted: one pass from zeros does worse on the rows the warm start had seen.
    const cold = fitSparseSoftmax(all, undefined, { ...opts, maxEpochs: 1 });
    expect(objective(seen, continued.params, 0)).toBeLessThan(objective(seen, cold.params, 0));
  });
});
