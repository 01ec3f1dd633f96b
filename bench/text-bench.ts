/**
 * The text backbone on banking77 (77 intents; ../shared/datasets/banking77, column `category`), against
 * scikit-learn's TF-IDF + logistic regression run on the same rows (bench/sklearn-text.py):
 * - the backbone: build time from the pinned npm package, weights size (raw and gzipped), int8 fidelity, and the
 *   share of banking77's word tokens outside the table at several vocabulary sizes (what pruning costs);
 * - feature extraction, texts per second on one core;
 * - accuracy on the fixed test split, all training data and 10 per intent (3 seeds, mean), each trained by
 *   trainHead as the pipeline does (its own validation split, search, refit), with its training time, and for
 *   all data that time plus the label suspects the pipeline finds after it;
 * - predict latency in-process (featurize + head), p50 and p95.
 * `--skip-reference` skips scikit-learn; `--seeds N` changes the number of 10-per-intent samples.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { densify, stackFeatures } from '../shared/text/sentence-features.js';
import {
  buildTextBackbone,
  DEFAULT_TEXT_VOCABULARY,
  type TextBackbone,
} from '../shared/text/text-backbone.js';
import { tokenize } from '../shared/text/text-tokenize.js';
import { WINK_SOURCE_ID, winkVectors } from '../shared/text/wink-package.js';
import type { SourceWord } from '../shared/text/word-vector-source.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { computeMetrics, findLabelSuspects, loadHead, trainHead } from '../shared/train/index.js';
import { type Banking77Row, readBanking77 } from './banking77-rows.js';
import { emit, percentile, repoRoot } from './bench-util.js';

const args = process.argv.slice(2);
const seeds = Number(args[args.indexOf('--seeds') + 1] ?? 3) || 3;

type Row = Banking77Row;

const sha = (s: string) => createHash('sha256').update(s).digest();

async function buildBackbone(): Promise<TextBackbone> {
  const studied = [10_000, 25_000, 50_000, 100_000, 200_000];
  const words: SourceWord[] = [];
  const started = performance.now();
  for await (const w of winkVectors(Math.max(...studied))) words.push(w);
  const rank = new Map(words.map((w) => [w.word, w.rank]));
  const tokens = [...readBanking77('train.csv'), ...readBanking77('test.csv')].flatMap((r) =>
    tokenize(r.text).filter((t) => t.word),
  );
  for (const size of studied) {
    const oov = tokens.filter((t) => !((rank.get(t.text) ?? Number.POSITIVE_INFINITY) < size)).length;
    emit('text.oov_tokens', oov / tokens.length, 'share', { vocabulary: size, tokens: tokens.length });
  }
  async function* pruned() {
    yield* words.slice(0, DEFAULT_TEXT_VOCABULARY);
  }
  const { pkg, backbone, fidelity } = await buildTextBackbone({
    source: pruned(),
    sourceId: WINK_SOURCE_ID,
    dim: 100,
  });
  emit('text.backbone_build', (performance.now() - started) / 1000, 's', {
    id: pkg.manifest.id,
    readWords: words.length,
  });
  emit('text.weights_bytes', pkg.weights.length, 'bytes', { vocabulary: DEFAULT_TEXT_VOCABULARY });
  emit('text.weights_gzip_bytes', gzipSync(pkg.weights).length, 'bytes');
  emit('text.table_cosine_mean', fidelity.cosineMean, 'cosine', {
    min: fidelity.cosineMin,
    words: fidelity.words,
  });
  return backbone;
}

function tenPerIntent(rows: Row[], seed: number): number[] {
  const by = new Map<string, number[]>();
  rows.forEach((r, i) => {
    by.set(r.label, [...(by.get(r.label) ?? []), i]);
  });
  const key = (i: number) => sha(`${seed}:${rows[i]!.text}`).readUInt32BE(0);
  return [...by.values()].flatMap((idx) => idx.sort((a, b) => key(a) - key(b)).slice(0, 10));
}

async function main() {
  await initTf({ backend: 'wasm' });
  const backbone = await buildBackbone();
  const { featurizer } = backbone;
  const train = readBanking77('train.csv');
  const test = readBanking77('test.csv');
  const labelNames = [...new Set(train.map((r) => r.label))].sort();

  let started = performance.now();
  const trainFeatures = train.map((r) => featurizer.featurize(r.text));
  const testFeatures = test.map((r) => featurizer.featurize(r.text));
  const seconds = (performance.now() - started) / 1000;
  emit('text.extract_throughput', (train.length + test.length) / seconds, 'texts/s', {
    texts: train.length + test.length,
  });
  const nnz = trainFeatures.reduce((s, f) => s + f.indices.length, 0) / train.length;
  emit('text.feature_nonzeros', nnz, 'values/text', { dim: featurizer.dim });

  const testX = new Float32Array(test.length * featurizer.dim);
  testFeatures.forEach((f, i) => {
    densify(f, testX, i * featurizer.dim);
  });
  const runs: { name: string; rows: number[] }[] = [{ name: 'full', rows: train.map((_, i) => i) }];
  for (let s = 0; s < seeds; s++) runs.push({ name: `ten-${s}`, rows: tenPerIntent(train, s) });

  const ours: Record<string, number> = {};
  let fullHeadPredict: ((i: number) => void) | undefined;
  for (const run of runs) {
    const input = {
      features: new Float32Array(0),
      sparse: stackFeatures(run.rows.map((i) => trainFeatures[i]!)),
      dim: featurizer.dim,
      labels: run.rows.map((i) => labelNames.indexOf(train[i]!.label)),
      labelNames,
      ids: run.rows.map((i) => sha(`${i}:${train[i]!.text}`).toString('hex')),
    };
    started = performance.now();
    const result = await trainHead(input);
    const trainSeconds = (performance.now() - started) / 1000;
    const head = await loadHead(result.head);
    const probs = head.predict(testX, test.length);
    const accuracy = computeMetrics(
      test.map((r) => labelNames.indexOf(r.label)),
      probs,
      labelNames,
    ).accuracy;
    ours[run.name] = accuracy;
    emit('text.run', accuracy, 'accuracy', {
      run: run.name,
      texts: run.rows.length,
      trainSeconds: Number(trainSeconds.toFixed(2)),
      l2: result.config.l2,
      epochs: result.config.epochs,
      selection: result.config.selection,
    });
    if (run.name === 'full') {
      emit('text.train_seconds_full', trainSeconds, 's', { texts: run.rows.length, note: 'trainHead' });
      // What a project's training adds to the head search: its label suspects, as ProjectTrainer runs them.
      started = performance.now();
      const suspects = await findLabelSuspects(input, { config: result.config });
      const suspectSeconds = (performance.now() - started) / 1000;
      emit('text.train_with_suspects_seconds_full', trainSeconds + suspectSeconds, 's', {
        texts: run.rows.length,
        suspectSeconds: Number(suspectSeconds.toFixed(2)),
        folds: suspects.folds,
        note: 'trainHead + findLabelSuspects; npm run bench:text-predict times the whole ProjectTrainer.run',
      });
      fullHeadPredict = (i) => {
        head.predict(densify(featurizer.featurize(test[i]!.text)), 1);
      };
    } else head.dispose();
  }
  const latencies: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    fullHeadPredict!(i % test.length);
    latencies.push(performance.now() - t);
  }
  emit('text.predict_in_process_p50', percentile(latencies.slice(50), 50), 'ms', {
    p95: percentile(latencies.slice(50), 95),
  });
  const tenMean = runs.filter((r) => r.name !== 'full').reduce((s, r) => s + ours[r.name]!, 0) / seeds;
  emit('text.accuracy_full', ours.full!, 'accuracy');
  emit('text.accuracy_10_per_intent', tenMean, 'accuracy', { seeds });

  if (args.includes('--skip-reference')) return;
  const dir = mkdtempSync(join(tmpdir(), 'text-bench-'));
  try {
    writeFileSync(
      join(dir, 'runs.json'),
      JSON.stringify({
        train: train.map((r) => [r.text, r.label]),
        test: test.map((r) => [r.text, r.label]),
        runs,
      }),
    );
    const out = spawnSync('/usr/bin/python3', [join(repoRoot, 'bench', 'sklearn-text.py'), dir], {
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`sklearn-text.py failed: ${out.stderr}`);
    const ref = JSON.parse(out.stdout) as Record<string, { accuracy: number; seconds: number }>;
    emit('text.reference_full', ref.full!.accuracy, 'accuracy', {
      trainSeconds: Number(ref.full!.seconds.toFixed(1)),
    });
    const refTen = runs.filter((r) => r.name !== 'full').map((r) => ref[r.name]!.accuracy);
    emit('text.reference_10_per_intent', refTen.reduce((a, b) => a + b, 0) / seeds, 'accuracy', {
      runs: refTen,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
