// npm run bench:suspects: how well a training's label suspects (shared/train/label-suspects.ts) find wrong labels
// on clothing-small. The training photos (train + validation splits) go through the exported default backbone
// (features cached under bench/.cache, shared with nothing else), 5% of them are moved to another label at
// random, the head is trained as a project's training trains it, and the suspects are ranked. Reported per seed
// and averaged: the share of moved photos within the top 2x-as-many suspects (the recall at that cut, target
// >= 0.7), the precision at that cut, and the suspect search's time against the head training's.
import { createHash } from 'node:crypto';
import { loadBackbone } from '../shared/backbone/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { createRng, findLabelSuspects, trainHead } from '../shared/train/index.js';
import { testBackbone } from '../test/support/test-backbone.js';
import { clothingSmallDir, emit, listSplit } from './bench-util.js';
import { cachedViewFeatures } from './cached-view-features.js';

const SEEDS = [1, 2, 3];
const MOVED_SHARE = 0.05;

interface Run {
  seed: number;
  moved: number;
  recall: number;
  precision: number;
  found: number;
  headSeconds: number;
  suspectSeconds: number;
}

/** Moves `share` of the photos, chosen at random, each to a random other label. */
function plantWrongLabels(labels: readonly number[], k: number, share: number, seed: number) {
  const rng = createRng(seed);
  const order = labels.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const moved = new Set(order.slice(0, Math.round(share * labels.length)));
  const noisy = labels.map((l, i) => (moved.has(i) ? (l + 1 + Math.floor(rng() * (k - 1))) % k : l));
  return { moved, noisy };
}

async function main(): Promise<void> {
  await initTf();
  const files = (['train', 'validation'] as const).flatMap((s) => listSplit(clothingSmallDir, s));
  if (files.length === 0) {
    emit('suspects_recall_at_2x', null, 'ratio', { note: `clothing-small not found at ${clothingSmallDir}` });
    return;
  }
  const backbone = await loadBackbone(await testBackbone());
  const features = await cachedViewFeatures({ backbone, files, view: 'identity', prefix: 'suspects' });
  const labelNames = [...new Set(files.map((f) => f.label))].sort();
  const truth = files.map((f) => labelNames.indexOf(f.label));
  const ids = files.map((f) => createHash('sha256').update(f.path).digest('hex'));
  const runs: Run[] = [];
  for (const seed of SEEDS) {
    const { moved, noisy } = plantWrongLabels(truth, labelNames.length, MOVED_SHARE, seed);
    const input = { features, dim: backbone.featureDim, labels: noisy, labelNames, ids };
    const t0 = performance.now();
    const head = await trainHead(input, { seed });
    const headSeconds = (performance.now() - t0) / 1000;
    const found = await findLabelSuspects(input, { config: head.config, trainOptions: { seed } });
    const top = found.suspects.slice(0, 2 * moved.size);
    const hits = top.filter((s) => moved.has(s.row)).length;
    const run: Run = {
      seed,
      moved: moved.size,
      recall: hits / moved.size,
      precision: top.length === 0 ? 0 : hits / top.length,
      found: found.suspects.length,
      headSeconds,
      suspectSeconds: found.seconds,
    };
    runs.push(run);
    console.error(JSON.stringify({ ...run, head: `${head.config.headType} l2 ${head.config.l2}` }));
  }
  const mean = (f: (r: Run) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const extra = { photos: files.length, moved: runs[0]!.moved, seeds: SEEDS };
  emit(
    'suspects_recall_at_2x',
    mean((r) => r.recall),
    'ratio',
    {
      ...extra,
      target: 0.7,
      perSeed: runs.map((r) => Number(r.recall.toFixed(4))),
    },
  );
  emit(
    'suspects_precision_at_2x',
    mean((r) => r.precision),
    'ratio',
    {
      ...extra,
      perSeed: runs.map((r) => Number(r.precision.toFixed(4))),
    },
  );
  emit(
    'suspects_found',
    mean((r) => r.found),
    'photos',
    extra,
  );
  emit(
    'suspects_seconds',
    mean((r) => r.suspectSeconds),
    's',
    extra,
  );
  emit(
    'suspects_head_training_seconds',
    mean((r) => r.headSeconds),
    's',
    extra,
  );
  emit(
    'suspects_time_ratio',
    mean((r) => r.suspectSeconds / r.headSeconds),
    'ratio',
    {
      ...extra,
      note: 'suspect search / head training (search and refit)',
    },
  );
}

await main();
