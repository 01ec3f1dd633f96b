import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDatasetIndex, type DatasetIndex } from '../dataset/dataset-index.js';
import { encodeFeatures } from '../dataset/feature-file.js';
import { layout } from '../layout/index.js';
import { writeRetrainRequest } from '../pipeline/retrain-requests.js';
import { createProjectTrainer } from '../pipeline/train-project.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { readPointer } from './model-store.js';
import { VERSION_STAGE_TAG } from './version-stage.js';

// The promotion gate end to end: the version it holds back keeps the tag the lifecycle rule expires.

const DIM = 16;
const backbone = { id: 'test-backbone', weightsSha256: 'b'.repeat(64), inputSize: 224, featureDim: DIM };
const P = 'gate';
const LABELS = ['hat', 'shoes', 'pants'];

beforeAll(async () => {
  await initTf();
});

/** Well separated cached features, ten per label, as the precompute function would write them. */
async function seed(store: ObjectStore, index: DatasetIndex): Promise<void> {
  let seq = 1;
  for (const [li, label] of LABELS.entries()) {
    for (let i = 0; i < 10; i++) {
      const v = new Float32Array(DIM);
      for (let d = 0; d < DIM; d++) v[d] = (d % LABELS.length === li ? 2 : 0) + Math.sin(d * 7 + i) * 0.3;
      const sha = createHash('sha256').update(`${label}-${i}`).digest('hex');
      await store.put(layout.feature(backbone.id, sha), encodeFeatures(backbone.id, v));
      await index.apply(P, {
        state: 'example',
        key: `uploads/${P}/${label}/${i}.jpg`,
        label,
        sha256: sha,
        bytes: 1,
        sequencer: String(seq++).padStart(8, '0'),
        at: '',
      });
    }
  }
}

async function stageOf(store: ObjectStore, version: string): Promise<Set<string | undefined>> {
  const stages = new Set<string | undefined>();
  for await (const o of store.list(layout.versionPrefix(P, version))) {
    stages.add((await store.getTags(o.key))?.[VERSION_STAGE_TAG]);
  }
  return stages;
}

describe('the promotion gate', () => {
  it('leaves the version it holds back tagged candidate, and the current one promoted', async () => {
    const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-gate-stage-')) });
    const index = createDatasetIndex(store);
    let t = Date.parse('2026-11-28T10:00:00Z');
    const now = () => new Date(t);
    const trainer = createProjectTrainer({
      store,
      index,
      backbone,
      now,
      quietSeconds: 30,
      trainOptions: { headTypes: ['softmax'], softmaxL2: [1e-3, 1e-2] },
    });
    const train = async () => {
      await writeRetrainRequest(store, P, { now: now() });
      t += 31_000;
      return trainer.run(P);
    };

    await seed(store, index);
    const first = await train();
    expect(first.status).toBe('promoted');
    // Scramble the labels: the next model is much worse on validation, and the gate keeps it out.
    for (const [i, e] of (await index.snapshot(P)).entries()) {
      await index.apply(P, { ...e, state: 'example', label: LABELS[(i * 7) % 3]!, sequencer: '9', at: '' });
    }
    const worse = await train();
    expect(worse.status).toBe('candidate');

    const promoted = first.status === 'promoted' ? first.version : '';
    const candidate = worse.status === 'candidate' ? worse.version : '';
    expect((await readPointer(store, P))?.pointer.version).toBe(promoted);
    expect(await stageOf(store, promoted)).toEqual(new Set(['promoted']));
    expect(await stageOf(store, candidate)).toEqual(new Set(['candidate']));
  });
});
