// npm run bench:ui: how long the dashboard takes to render each page of a project with 5,000 photos (target
// < 300 ms), from a file-system store, through the app's own request path (no browser, no network).
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatasetIndex } from '../shared/dataset/dataset-index.js';
import { mapLimit } from '../shared/map-limit.js';
import { flipPointer, writeVersion } from '../shared/models/index.js';
import { createFsStore, type ObjectStore } from '../shared/store/index.js';
import { createUiApp } from '../shared/ui/index.js';
import { emit, percentile, timeRuns } from './bench-util.js';

const PHOTOS = Number(process.env.BENCH_UI_PHOTOS ?? 5000);
const LABELS = Array.from({ length: 10 }, (_, i) => `label-${i}`);
const PROJECT = 'big';
const VERSION = 'v20260101T000000000Z-000001';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** 5,000 indexed photos through the index's own writes, and a version whose evaluation lists a fifth of them. */
async function seed(store: ObjectStore): Promise<void> {
  const index = createDatasetIndex(store);
  const keys = Array.from({ length: PHOTOS }, (_, i) => ({ i, label: LABELS[i % LABELS.length]! }));
  await mapLimit(keys, 8, ({ i, label }) =>
    index.apply(PROJECT, {
      key: `uploads/${PROJECT}/${label}/photo-${String(i).padStart(5, '0')}.jpg`,
      state: 'example',
      label,
      sha256: sha(String(i)),
      bytes: 40_000,
      sequencer: String(i).padStart(8, '0'),
      at: '2026-01-01T00:00:00.000Z',
    }),
  );
  const validation = keys.filter(({ i }) => i % 5 === 0);
  const k = LABELS.length;
  const confusion = LABELS.map(() => LABELS.map(() => 0));
  const examples = validation.map(({ i, label }) => {
    const t = LABELS.indexOf(label);
    const p = i % 7 === 0 ? (t + 1) % k : t;
    confusion[t]![p]!++;
    return {
      key: `uploads/${PROJECT}/${label}/photo-${String(i).padStart(5, '0')}.jpg`,
      sha256: sha(String(i)),
      label,
      predicted: LABELS[p]!,
      score: 0.4 + (i % 60) / 100,
      outlierScore: 1,
    };
  });
  const perLabel = LABELS.map((label) => ({
    label,
    precision: 0.9,
    recall: 0.9,
    f1: 0.9,
    support: PHOTOS / k / 5,
  }));
  await writeVersion(
    store,
    {
      schemaVersion: 1,
      project: PROJECT,
      version: VERSION,
      createdAt: '2026-01-01T00:00:00.000Z',
      labels: LABELS,
      backbone: { id: 'bench', weightsSha256: '0'.repeat(64), inputSize: 160, featureDim: 2 },
      head: { format: 'tfjs-layers', type: 'softmax' },
      metrics: { accuracy: 0.9, macroF1: 0.9, n: examples.length },
      datasetSnapshot: '0'.repeat(64),
      training: { config: {} },
    } as never,
    {
      'head.json': '{}',
      'head.bin': new Uint8Array(4),
      'evaluation.json': JSON.stringify({
        validation: { n: examples.length, accuracy: 0.9, macroF1: 0.9, ece: 0.05, perLabel, confusion },
        validationExamples: examples,
      }),
      'suspects.json': JSON.stringify({
        schemaVersion: 1,
        folds: 5,
        photos: PHOTOS,
        suspects: examples
          .filter((e) => e.label !== e.predicted)
          .map((e) => ({ ...e, suspectedLabel: e.predicted, confidence: e.score, labelScore: 0.1 })),
      }),
    },
  );
  await flipPointer(store, PROJECT, VERSION, 'promoted', undefined, new Date());
}

const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-bench-ui-')) });
const seeded = performance.now();
await seed(store);
emit('ui_seed_seconds', (performance.now() - seeded) / 1000, 's', { photos: PHOTOS });
const app = createUiApp({ store });
const pages: Record<string, string> = {
  projects: '/ui/',
  data: `/ui/p/${PROJECT}/data`,
  data_label: `/ui/p/${PROJECT}/data?label=label-3`,
  model: `/ui/p/${PROJECT}/model`,
  mistakes: `/ui/p/${PROJECT}/mistakes`,
  mistakes_cell: `/ui/p/${PROJECT}/mistakes?label=label-0&predicted=label-1`,
  suspects: `/ui/p/${PROJECT}/suspects`,
  review: `/ui/p/${PROJECT}/review`,
  keys: `/ui/p/${PROJECT}/keys`,
};
let worst = 0;
for (const [name, path] of Object.entries(pages)) {
  const get = async () => {
    const res = await app.request(`http://127.0.0.1:8787${path}`, { headers: { host: '127.0.0.1:8787' } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    await res.text();
  };
  // The first render reads the index (no snapshot in memory yet); the rest reuse it while no shard changes.
  const [cold] = await timeRuns(1, get);
  emit(`ui_page_ms_first_${name}`, cold!, 'ms', { photos: PHOTOS });
  const runs = await timeRuns(15, get);
  const p50 = percentile(runs, 50);
  worst = Math.max(worst, percentile(runs, 90));
  emit(`ui_page_ms_p50_${name}`, p50, 'ms', { photos: PHOTOS, p90: Number(percentile(runs, 90).toFixed(1)) });
}
emit('ui_page_ms_p90_worst', worst, 'ms', { photos: PHOTOS, target: 300 });
// A second dashboard in the same (warmed-up) process: its first render reads the whole index, without the
// process's one-time start-up costs that ui_page_ms_first_projects includes.
const fresh = createUiApp({ store });
const [again] = await timeRuns(1, async () => {
  const res = await fresh.request(`http://127.0.0.1:8787/ui/p/${PROJECT}/data`, {
    headers: { host: '127.0.0.1:8787' },
  });
  await res.text();
});
emit('ui_page_ms_first_data_new_dashboard', again!, 'ms', { photos: PHOTOS });
