import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type Backbone, loadBackbone } from '../shared/backbone/index.js';
import { decodeEvaluation, readVersion, VERSION_FILES } from '../shared/models/index.js';
import { readRetrainRequest } from '../shared/pipeline/retrain-requests.js';
import { listSuspects, relabelUpload, removeUpload } from '../shared/pipeline/upload-edits.js';
import { createFsStore, type ObjectStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { clothingMini } from './support/fixtures.js';
import { inProcessPipeline } from './support/in-process-pipeline.js';
import { motoBucket } from './support/moto.js';
import { testBackbone } from './support/test-backbone.js';

// Issue 16, parts 1 and 2, through the real extractor, index, trainer and the CLI's functions, wired as the local
// stack wires them: per-photo evaluation, label suspects, and relabel/remove through uploads/.

let backbone: Backbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
});

const photos = [...clothingMini('train'), ...clothingMini('eval')];
const fileName = (p: { path: string }) => p.path.split('/').pop()!;
const fast = { headTypes: ['softmax' as const], softmaxL2: [1e-3, 1e-2, 1e-1] };
/** Photos uploaded under the wrong label: [photo index, label it is uploaded as]. */
const PLANTED: [string, string][] = [
  ['hat', 'shoes'],
  ['shoes', 'pants'],
  ['pants', 'hat'],
];

function pipeline(store: ObjectStore) {
  return inProcessPipeline({ store, backbone, trainOptions: fast });
}

/** Uploads every clothing-mini photo, the first photo of each PLANTED label under the wrong label. */
async function uploadWithPlanted(store: ObjectStore, project: string): Promise<string[]> {
  const planted: string[] = [];
  const firstOf = new Map(PLANTED);
  for (const p of photos) {
    const wrong = firstOf.get(p.label);
    const key = `uploads/${project}/${wrong ?? p.label}/${p.label}-${fileName(p)}`;
    if (wrong) {
      firstOf.delete(p.label);
      planted.push(key);
    }
    await store.put(key, p.bytes);
  }
  return planted;
}

async function trained(store: ObjectStore, project: string) {
  const p = pipeline(store);
  const planted = await uploadWithPlanted(store, project);
  await p.reconciler.scan();
  const outcome = await p.trainer.run(project, { ignoreQuietWindow: true });
  if (outcome.status !== 'promoted') throw new Error(`training ${outcome.status}`);
  return { ...p, planted, version: outcome.version };
}

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`label suspects and per-photo evaluation (${name})`, () => {
    it('records every validation photo once, with its key, prediction and outlier score, cell by cell', async () => {
      const store = await makeStore();
      const { version } = await trained(store, 'mini');
      const read = await readVersion(store, 'mini', version);
      const evaluation = decodeEvaluation(read.files.get(VERSION_FILES.evaluation)!, version);
      const raw = evaluation as unknown as {
        validation: { n: number; confusion: number[][] };
        perLabelCounts: Record<string, number>;
        suspects: { folds: number; photos: number; found: number };
      };
      expect(raw.suspects).toMatchObject({ folds: 5, photos: photos.length, found: expect.any(Number) });
      const examples = evaluation.validationExamples!;
      expect(examples).toHaveLength(raw.validation.n);
      expect(new Set(examples.map((e) => e.sha256)).size).toBe(examples.length);
      expect(new Set(examples.map((e) => e.key)).size).toBe(examples.length);
      const labels = Object.keys(raw.perLabelCounts).sort();
      for (const e of examples) {
        expect(e.key.startsWith(`uploads/mini/${e.label}/`)).toBe(true);
        expect(e.outlierScore).toEqual(expect.any(Number));
        expect(e.score).toBeGreaterThanOrEqual(1 / labels.length);
      }
      // Each cell of the confusion matrix lists exactly as many photos as it counts.
      labels.forEach((t, ti) => {
        labels.forEach((p, pi) => {
          const inCell = examples.filter((e) => e.label === t && e.predicted === p);
          expect(inCell.length).toBe(raw.validation.confusion[ti]![pi]);
        });
      });
    });

    it('ranks the planted wrong labels first, and drops them from the list once relabelled or removed', async () => {
      const store = await makeStore();
      const { planted, reconciler, index } = await trained(store, 'closet');
      const list = await listSuspects(store, 'closet');
      expect(list.photos).toBe(photos.length);
      const top = list.suspects.slice(0, 2 * planted.length).map((s) => s.key);
      expect(top).toEqual(expect.arrayContaining(planted));
      const hat = list.suspects.find((s) => s.key === planted[0]);
      expect(hat).toMatchObject({ label: 'shoes', suspectedLabel: 'hat' });
      expect(hat!.confidence).toBeGreaterThan(0.5);

      const before = (await readRetrainRequest(store, 'closet'))!.sequence;
      const moved = await relabelUpload(store, { project: 'closet', key: planted[0]!, label: 'hat' });
      expect(moved).toMatchObject({ changed: true, to: planted[0]!.replace('/shoes/', '/hat/') });
      await removeUpload(store, { project: 'closet', key: planted[1]! });
      const events = await reconciler.scan();
      expect(events.map((e) => `${e.type} ${e.key}`).sort()).toEqual(
        [`created ${moved.to}`, `removed ${planted[0]}`, `removed ${planted[1]}`].sort(),
      );
      // The index holds the photo once, under its new label, and the removed one not at all.
      const snapshot = await index.snapshot('closet');
      expect(snapshot).toHaveLength(photos.length - 1);
      expect(snapshot.find((e) => e.key === moved.to)).toMatchObject({ label: 'hat' });
      expect(snapshot.some((e) => e.key === planted[0] || e.key === planted[1])).toBe(false);
      expect((await index.entry('closet', planted[1]!))?.state).toBe('deleted');
      expect((await readRetrainRequest(store, 'closet'))!.sequence > before).toBe(true);

      const after = await listSuspects(store, 'closet');
      expect(after.settled).toBe(2);
      expect(after.suspects.map((s) => s.key)).not.toEqual(expect.arrayContaining([planted[0]]));
      expect((await listSuspects(store, 'closet', { limit: 1 })).suspects).toHaveLength(1);
    });

    it('relabels to the same label as a no-op and refuses unknown keys and clobbering, changing nothing', async () => {
      const store = await makeStore();
      const key = 'uploads/shop/hat/a.jpg';
      await store.put(key, photos[0]!.bytes);
      await store.put('uploads/shop/shoes/a.jpg', photos[1]!.bytes);
      expect(await relabelUpload(store, { project: 'shop', key: 'hat/a.jpg', label: 'hat' })).toEqual({
        from: key,
        to: key,
        changed: false,
      });
      await expect(relabelUpload(store, { project: 'shop', key, label: 'shoes' })).rejects.toThrow(
        /uploads\/shop\/shoes\/a\.jpg' already exists with other bytes/,
      );
      await expect(removeUpload(store, { project: 'shop', key: 'hat/nope.jpg' })).rejects.toThrow(
        /no upload 'uploads\/shop\/hat\/nope\.jpg'/,
      );
      await expect(relabelUpload(store, { project: 'shop', key, label: 'bad/label' })).rejects.toThrow(
        /not allowed/,
      );
      const left: string[] = [];
      for await (const o of store.list('uploads/shop/')) left.push(o.key);
      expect(left).toEqual(['uploads/shop/hat/a.jpg', 'uploads/shop/shoes/a.jpg']);
    });
  });
}

suite('file-system store', async () =>
  createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-suspects-')) }));

const endpoint = inject('motoEndpoint');
if (endpoint) {
  suite('S3 via moto_server', async () => (await motoBucket(endpoint, 'hs-suspects')).store);
} else {
  console.warn(`[label suspects] S3 variant skipped: ${inject('motoSkipReason')}`);
}
