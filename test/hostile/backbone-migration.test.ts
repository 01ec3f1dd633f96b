import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { main } from '../../functions/cli/headstart.js';
import {
  type Backbone,
  type BackbonePackage,
  buildMnv2Backbone,
  loadBackbone,
  MNV2_INPUT_SIZE,
  mnv2BackboneId,
  readDefaultBackboneId,
  saveBackbone,
  setDefaultBackbone,
} from '../../shared/backbone/index.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { silentLogger } from '../../shared/http/edge-logger.js';
import { createEdgeRuntime } from '../../shared/http/edge-runtime.js';
import { layout } from '../../shared/layout/index.js';
import { readPointer, readVersion } from '../../shared/models/index.js';
import { createUploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { migrateBackbone } from '../../shared/pipeline/migrate-backbone.js';
import { readRetrainRequest, writeRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import { createProjectTrainer, trainingBackbone } from '../../shared/pipeline/train-project.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { clothingMini } from '../support/fixtures.js';
import { motoBucket } from '../support/moto.js';
import { nextSequencer } from '../support/s3-events.js';
import { cachedBackbonePackage, testBackbone } from '../support/test-backbone.js';

const fast = { headTypes: ['softmax' as const], softmaxL2: [1e-3, 1e-2] };
/** Two labels of six photos: enough to train, few enough to extract twice per test. */
const photos = () => {
  const train = clothingMini('train');
  return ['hat', 'shoes'].flatMap((l) => train.filter((p) => p.label === l).slice(0, 6));
};
const keyOf = (project: string, p: { label: string; path: string }) =>
  `uploads/${project}/${p.label}/${p.path.split('/').pop()}`;

let oldPkg: BackbonePackage;
let newPkg: BackbonePackage;
let oldBackbone: Backbone;
let newBackbone: Backbone;

beforeAll(async () => {
  await initTf();
  // The migration users make: from MobileNetV2 1.0 (the default before issue 14) to today's default.
  oldPkg = await cachedBackbonePackage(
    mnv2BackboneId(),
    async (fidelityImages) => (await buildMnv2Backbone({ fidelityImages })).pkg,
    { inputSize: MNV2_INPUT_SIZE },
  );
  newPkg = await testBackbone();
  [oldBackbone, newBackbone] = await Promise.all([loadBackbone(oldPkg), loadBackbone(newPkg)]);
}, 300_000);

/** Uploads the photos and extracts them as the precompute function would, under `backbone`. */
async function uploadAndExtract(
  store: ObjectStore,
  index: DatasetIndex,
  project: string,
  backbone: Backbone,
): Promise<void> {
  const extractor = createUploadExtractor({ store, backbone, index, requestRetrain: async () => {} });
  for (const p of photos()) {
    const key = keyOf(project, p);
    await store.put(key, p.bytes);
    const out = await extractor.handle({
      type: 'created',
      key,
      sequencer: nextSequencer(),
      eventTime: new Date().toISOString(),
    });
    expect(out.status).toBe('indexed');
  }
}

async function trainOn(store: ObjectStore, index: DatasetIndex, project: string, backbone: Backbone) {
  await writeRetrainRequest(store, project, { immediate: true });
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(backbone),
    trainOptions: fast,
  });
  return trainer.run(project, { ignoreQuietWindow: true });
}

async function evaluationOf(store: ObjectStore, project: string, version: string) {
  const o = await store.get(layout.versionFile(project, version, 'evaluation.json'));
  return JSON.parse(new TextDecoder().decode(o!.body)) as {
    examples: number;
    missingFeatures?: { backbone: string; photos: number };
    config: { nTrain: number; nValidation: number };
  };
}

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`backbone migration (${name})`, () => {
    it('re-extracts every photo under the new backbone resumably, reports failures, keeps old versions serving, and retrains', async () => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      await saveBackbone(store, oldPkg);
      await setDefaultBackbone(store, oldPkg.manifest.id);
      await saveBackbone(store, newPkg);
      await uploadAndExtract(store, index, 'closet', oldBackbone);
      const v1 = await trainOn(store, index, 'closet', oldBackbone);
      expect(v1.status).toBe('promoted');
      // One upload replaced by other bytes since it was indexed: reported, never extracted as the old photo.
      const changed = keyOf('closet', photos()[0]!);
      await store.put(changed, clothingMini('eval')[0]!.bytes);

      const requested: string[] = [];
      const deps = {
        store,
        index,
        backbone: newBackbone,
        requestRetrain: async (p: string) => {
          requested.push(p);
        },
      };
      const first = await migrateBackbone(deps, { makeDefault: true });
      expect(first).toMatchObject({ backbone: newPkg.manifest.id, madeDefault: true, isDefault: true });
      expect(first.projects).toEqual([
        expect.objectContaining({ project: 'closet', photos: 12, extracted: 11, alreadyThere: 0 }),
      ]);
      expect(first.projects[0]!.failed).toEqual([
        expect.objectContaining({ key: changed, code: 'upload_changed' }),
      ]);
      expect(requested).toEqual(['closet']);
      expect(await readDefaultBackboneId(store)).toBe(newPkg.manifest.id);
      for (const e of await index.snapshot('closet')) {
        const want = e.key === changed ? undefined : expect.anything();
        expect(await store.head(layout.feature(newPkg.manifest.id, e.sha256))).toEqual(want);
        expect(await store.head(layout.feature(newPkg.manifest.id, e.sha256, 'hflip'))).toEqual(want);
      }

      // The old version keeps serving on the backbone its manifest names, though the default has moved on.
      const edge = () =>
        createEdgeRuntime(
          { store: { kind: 'fs', root: 'unused' }, logLevel: 'error', app: { requireKeys: false } },
          { store, logger: silentLogger },
        );
      const predict = async () => {
        const res = await edge().app.request('/v1/projects/closet/predict', {
          method: 'POST',
          body: clothingMini('eval')[1]!.bytes,
          headers: { 'content-type': 'image/jpeg' },
        });
        expect(res.status).toBe(200);
        return ((await res.json()) as { model: { version: string; backbone: string } }).model;
      };
      expect(await predict()).toEqual(
        expect.objectContaining({
          version: v1.status === 'promoted' && v1.version,
          backbone: oldPkg.manifest.id,
        }),
      );

      // The retrain trains on the new backbone's features alone, and says which photo it had to leave out.
      const v2 = await trainOn(store, index, 'closet', newBackbone);
      expect(v2.status).toBe('promoted');
      const version = v2.status === 'promoted' ? v2.version : '';
      expect((await readVersion(store, 'closet', version)).manifest.backbone.id).toBe(newPkg.manifest.id);
      const evaluation = await evaluationOf(store, 'closet', version);
      expect(evaluation.examples).toBe(11);
      expect(evaluation.missingFeatures).toMatchObject({ backbone: newPkg.manifest.id, photos: 1 });
      expect(await predict()).toEqual(expect.objectContaining({ version, backbone: newPkg.manifest.id }));

      // Resumable: a second run extracts nothing and asks for nothing.
      const before = await readRetrainRequest(store, 'closet');
      const second = await migrateBackbone(deps, { makeDefault: true });
      expect(second.projects[0]).toMatchObject({ extracted: 0, alreadyThere: 11, retrainRequested: false });
      expect(second.madeDefault).toBe(false);
      expect(requested).toEqual(['closet']);
      expect(await readRetrainRequest(store, 'closet')).toEqual(before);
    });

    it('refuses to train on a backbone none of the photos were extracted under, naming the migration', async () => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      await uploadAndExtract(store, index, 'stale', oldBackbone);
      const out = await trainOn(store, index, 'stale', newBackbone);
      expect(out).toMatchObject({ status: 'refused', code: 'features_missing' });
      expect(out.status === 'refused' && out.message).toMatch(/backbone migrate --project stale/);
      expect(await readPointer(store, 'stale')).toBeUndefined();
    });

    it('pre-extracts one project without moving the default or asking for a retrain', async () => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      await setDefaultBackbone(store, oldPkg.manifest.id);
      await uploadAndExtract(store, index, 'one', oldBackbone);
      const requested: string[] = [];
      const r = await migrateBackbone(
        { store, index, backbone: newBackbone, requestRetrain: async (p) => void requested.push(p) },
        { projects: ['one'] },
      );
      expect(r).toMatchObject({ madeDefault: false, isDefault: false });
      expect(r.projects[0]).toMatchObject({ photos: 12, extracted: 12, failed: [] });
      expect(requested).toEqual([]);
      expect(await readDefaultBackboneId(store)).toBe(oldPkg.manifest.id);
    });
  });

  describe(`flip views by default (${name})`, () => {
    it('caches the mirror of every upload unless the project turns it off', async () => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      await store.put(layout.projectSettings('plain'), JSON.stringify({ augmentations: [] }));
      await uploadAndExtract(store, index, 'mirrored', oldBackbone);
      await uploadAndExtract(store, index, 'plain', oldBackbone);
      const id = oldPkg.manifest.id;
      const [a] = await index.snapshot('mirrored');
      expect(await store.head(layout.feature(id, a!.sha256, 'hflip'))).toBeDefined();
      // 'plain' holds the same photos, content-addressed: its views exist from 'mirrored', so count the keys of a
      // photo only 'plain' has.
      const own = clothingMini('eval')[2]!;
      const extractor = createUploadExtractor({
        store,
        backbone: oldBackbone,
        index,
        requestRetrain: async () => {},
      });
      await store.put('uploads/plain/hat/own.jpg', own.bytes);
      const out = await extractor.handle({
        type: 'created',
        key: 'uploads/plain/hat/own.jpg',
        sequencer: nextSequencer(),
        eventTime: new Date().toISOString(),
      });
      expect(out).toMatchObject({ status: 'indexed', computed: 1 });
      expect(
        out.status === 'indexed' && (await store.head(layout.feature(id, out.sha256, 'hflip'))),
      ).toBeUndefined();
    });

    it('trains a project whose photos were extracted without the mirror, on the photos alone', async () => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      await store.put(layout.projectSettings('old'), JSON.stringify({ augmentations: [] }));
      await uploadAndExtract(store, index, 'old', oldBackbone);
      // The project now takes the default (mirrors on), but none of its photos has one cached.
      await store.delete(layout.projectSettings('old'));
      const out = await trainOn(store, index, 'old', oldBackbone);
      expect(out.status).toBe('promoted');
      const evaluation = await evaluationOf(store, 'old', out.status === 'promoted' ? out.version : '');
      expect(evaluation.config.nTrain + evaluation.config.nValidation).toBe(12);
    });
  });
}

suite('file-system store', async () =>
  createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-migrate-')) }));

const endpoint = inject('motoEndpoint');
if (endpoint) {
  suite('S3 via moto_server', async () => (await motoBucket(endpoint, 'hs-migrate')).store);
} else {
  console.warn(`[backbone migration] S3 variant skipped: ${inject('motoSkipReason')}`);
}

describe('headstart backbone migrate', () => {
  async function cli(home: string, ...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
    process.exitCode = undefined;
    try {
      const code = await main([...args, '--home', home]);
      return { code, out: out.join('\n'), err: err.join('\n') };
    } finally {
      process.exitCode = undefined;
      vi.restoreAllMocks();
    }
  }

  it('migrates a local home, prints progress and what it did, and does nothing the second time', async () => {
    const home = mkdtempSync(join(tmpdir(), 'headstart-migrate-cli-'));
    const store = createFsStore({ root: join(home, 'store') });
    const index = createDatasetIndex(store);
    await saveBackbone(store, oldPkg);
    await setDefaultBackbone(store, oldPkg.manifest.id);
    await saveBackbone(store, newPkg);
    await uploadAndExtract(store, index, 'closet', oldBackbone);
    const to = newPkg.manifest.id;

    const first = await cli(home, 'backbone', 'migrate', '--to', to);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain('closet: 12 of 12 photos');
    expect(first.out).toContain(
      'closet: 12 photos, extracted 12, already there 0, failed 0; retrain requested',
    );
    expect(first.out).toContain(`${to} is now the default backbone`);
    expect(await readRetrainRequest(store, 'closet')).toBeDefined();

    const second = await cli(home, 'backbone', 'migrate', '--to', to);
    expect(second.out).toContain('closet: 12 photos, extracted 0, already there 12, failed 0\n');
    expect(second.out).toContain(`${to} is the default backbone`);

    const unknown = await cli(home, 'backbone', 'migrate', '--to', 'no-such-backbone');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/backbone 'no-such-backbone' is not in .*backbone list/);
  });
});
