import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { motoBucket } from '../../test/support/moto.js';
import { createDatasetIndex, type DatasetIndex } from '../dataset/dataset-index.js';
import { encodeFeatures } from '../dataset/feature-file.js';
import { layout } from '../layout/index.js';
import { listVersions, readPointer, readVersion } from '../models/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { MAX_FLIP_SHARE, UNSURE_FLIP_BELOW } from './project-settings.js';
import { writeRetrainRequest } from './retrain-requests.js';
import {
  createProjectTrainer,
  readDecision,
  readTrainingState,
  type TrainProjectDeps,
} from './train-project.js';

const DIM = 32;
const backbone = { id: 'test-backbone', weightsSha256: 'b'.repeat(64), inputSize: 224, featureDim: DIM };
const fast = { headTypes: ['softmax' as const], softmaxL2: [1e-3, 1e-2] };

beforeAll(async () => {
  await initTf();
});

/** Gaussian blobs as cached features, one per label, written as the precompute function would. */
async function seed(
  store: ObjectStore,
  index: DatasetIndex,
  project: string,
  perLabel: Record<string, number>,
  noise = 0.6,
  salt = '',
) {
  let seq = 1;
  let rng = 7;
  const rand = () => {
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    return rng / 2 ** 31;
  };
  const labels = Object.keys(perLabel);
  for (const [li, label] of labels.entries()) {
    for (let i = 0; i < perLabel[label]!; i++) {
      const v = new Float32Array(DIM);
      for (let d = 0; d < DIM; d++) v[d] = (d % labels.length === li ? 2 : 0) + (rand() - 0.5) * 2 * noise;
      const sha = createHash('sha256').update(`${salt}${label}-${i}`).digest('hex');
      await store.put(layout.feature(backbone.id, sha), encodeFeatures(backbone.id, v));
      await index.apply(project, {
        state: 'example',
        key: `uploads/${project}/${label}/${i}.jpg`,
        label,
        sha256: sha,
        bytes: 1,
        sequencer: `${salt}${String(seq++).padStart(8, '0')}`,
        at: '',
      });
    }
  }
}

function clock(start = Date.parse('2026-11-28T10:00:00Z')) {
  let t = start;
  return {
    now: () => new Date(t),
    advance: (s: number) => {
      t += s * 1000;
    },
  };
}

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`project training (${name})`, () => {
    const setup = async (extra: Partial<TrainProjectDeps> = {}) => {
      const store = await makeStore();
      const index = createDatasetIndex(store);
      const c = clock();
      const deps: TrainProjectDeps = {
        store,
        index,
        backbone,
        now: c.now,
        quietSeconds: 30,
        trainOptions: fast,
        ...extra,
      };
      return { store, index, c, deps, trainer: createProjectTrainer(deps) };
    };

    it('waits for the quiet window, then trains once for a burst of requests', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'burst', { hat: 10, shoes: 10 });
      const outcomes: string[] = [];
      // 30 uploads, each asking for a retrain and nudging the trainer, a second apart.
      for (let i = 0; i < 30; i++) {
        await writeRetrainRequest(store, 'burst', { now: c.now() });
        outcomes.push((await trainer.run('burst')).status);
        c.advance(1);
      }
      expect(new Set(outcomes)).toEqual(new Set(['too_early']));
      c.advance(30);
      // The 30 delayed nudges all arrive now; only the first trains.
      for (let i = 0; i < 30; i++) outcomes.push((await trainer.run('burst')).status);
      expect(outcomes.filter((s) => s === 'promoted')).toHaveLength(1);
      expect(outcomes.slice(30).filter((s) => s === 'up_to_date')).toHaveLength(29);
      expect(await listVersions(store, 'burst')).toHaveLength(1);
      expect((await readPointer(store, 'burst'))?.pointer.reason).toBe('promoted');
    });

    it('runs exactly one more training for requests that arrive during a training', async () => {
      let during: (() => Promise<void>) | undefined;
      const { store, index, c, trainer } = await setup({ beforeFlip: async () => during?.() });
      await seed(store, index, 'during', { hat: 8, shoes: 8 });
      await writeRetrainRequest(store, 'during', { now: c.now() });
      c.advance(31);
      during = async () => {
        during = undefined;
        await seed(store, index, 'during', { pants: 8 }, 0.6, 'late-');
        await writeRetrainRequest(store, 'during', { now: c.now() });
        await writeRetrainRequest(store, 'during', { now: c.now() });
        // Nudges delivered while the lease is held are refused and come back later.
        expect((await trainer.run('during', { ignoreQuietWindow: true })).status).toBe('busy');
      };
      expect((await trainer.run('during')).status).toBe('promoted');
      c.advance(31);
      const again = [await trainer.run('during'), await trainer.run('during'), await trainer.run('during')];
      expect(again.map((o) => o.status)).toEqual(['promoted', 'up_to_date', 'up_to_date']);
      expect(await listVersions(store, 'during')).toHaveLength(2);
    });

    it('keeps a pointer to one whole version when two trainings race to promote', async () => {
      const { store, index, c, deps } = await setup();
      await seed(store, index, 'race', { hat: 8, shoes: 8 });
      await writeRetrainRequest(store, 'race', { now: c.now() });
      c.advance(31);
      let release!: () => void;
      const paused = new Promise<void>((r) => {
        release = r;
      });
      let reachedFlip!: () => void;
      const atFlip = new Promise<void>((r) => {
        reachedFlip = r;
      });
      // A: a slow trainer that stops just before its pointer flip, past the end of its lease.
      const slow = createProjectTrainer({
        ...deps,
        owner: 'slow',
        beforeFlip: async () => {
          reachedFlip();
          await paused;
        },
      });
      const a = slow.run('race');
      await atFlip;
      // B: sees the lease expired, takes it over, trains and promotes.
      const later = clock(c.now().getTime() + 1000 * 1000);
      await writeRetrainRequest(store, 'race', { now: later.now(), force: true });
      later.advance(31);
      const b = await createProjectTrainer({ ...deps, owner: 'fast', now: later.now }).run('race');
      expect(b.status).toBe('promoted');
      release();
      const aOutcome = await a;
      expect(['promoted', 'candidate']).toContain(aOutcome.status);
      const versions = await listVersions(store, 'race');
      expect(versions).toHaveLength(2);
      const pointer = await readPointer(store, 'race');
      expect(versions).toContain(pointer!.pointer.version);
    });

    it("leaves a successor's lease in place when it finishes after its own lease was taken over", async () => {
      const { store, index, c, deps } = await setup();
      await seed(store, index, 'handover', { hat: 8, shoes: 8 });
      await writeRetrainRequest(store, 'handover', { now: c.now() });
      c.advance(31);
      const successor = JSON.stringify({ owner: 'successor', expiresAt: '2999-01-01T00:00:00.000Z' });
      const slow = createProjectTrainer({
        ...deps,
        owner: 'slow',
        // While this trainer is still busy, another one takes the (expired) lease over.
        beforeFlip: async () => {
          await store.put(layout.trainingLease('handover'), successor);
        },
      });
      expect((await slow.run('handover')).status).toBe('promoted');
      const lease = await store.get(layout.trainingLease('handover'));
      expect(lease && new TextDecoder().decode(lease.body)).toBe(successor);
    });

    it('removes its own lease when it finishes', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'own', { hat: 8, shoes: 8 });
      await writeRetrainRequest(store, 'own', { now: c.now() });
      c.advance(31);
      expect((await trainer.run('own')).status).toBe('promoted');
      expect(await store.head(layout.trainingLease('own'))).toBeUndefined();
    });

    it('never promotes a version whose head was corrupted in the store', async () => {
      const { store, index, c, trainer } = await setup({
        beforeFlip: async (version) => {
          const key = layout.versionFile('corrupt', version, 'head.bin');
          const o = await store.get(key);
          const bad = o!.body.slice();
          bad[0] = (bad[0]! + 1) % 256;
          await store.put(key, bad);
        },
      });
      await seed(store, index, 'corrupt', { hat: 8, shoes: 8 });
      await writeRetrainRequest(store, 'corrupt', { now: c.now() });
      c.advance(31);
      const out = await trainer.run('corrupt');
      expect(out.status).toBe('candidate');
      expect(out.status === 'candidate' && out.reason).toMatch(/sha256/);
      expect(await readPointer(store, 'corrupt')).toBeUndefined();
    });

    it('keeps a worse model out with the promotion gate, and lets a forced one in', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'gate', { hat: 10, shoes: 10, pants: 10 }, 0.3);
      await writeRetrainRequest(store, 'gate', { now: c.now() });
      c.advance(31);
      const first = await trainer.run('gate');
      expect(first.status).toBe('promoted');
      // Relabel every example at random-ish: the next model is much worse on validation.
      const snapshot = await index.snapshot('gate');
      const labels = ['hat', 'shoes', 'pants'];
      for (const [i, e] of snapshot.entries()) {
        await index.apply('gate', {
          ...e,
          state: 'example',
          label: labels[(i * 7) % 3]!,
          sequencer: '9',
          at: '',
        });
      }
      await writeRetrainRequest(store, 'gate', { now: c.now() });
      c.advance(31);
      const worse = await trainer.run('gate');
      expect(worse.status).toBe('candidate');
      expect((await readPointer(store, 'gate'))?.pointer.version).toBe(
        first.status === 'promoted' && first.version,
      );
      const decision = await readDecision(store, 'gate', worse.status === 'candidate' ? worse.version : '');
      expect(decision?.reason).toMatch(/below the current/);
      await writeRetrainRequest(store, 'gate', { now: c.now(), force: true });
      c.advance(31);
      const forced = await trainer.run('gate', { forcePromotion: true });
      expect(forced.status).toBe('promoted');
      expect((await readPointer(store, 'gate'))?.pointer.reason).toBe('forced');
    });

    it('trains on cached augmented views of training photos only, when the project turns them on', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'aug', { hat: 10, shoes: 10 });
      await store.put(layout.projectSettings('aug'), JSON.stringify({ augmentations: ['hflip'] }));
      for (const e of await index.snapshot('aug')) {
        const v = new Float32Array(DIM).fill(e.label === 'hat' ? 1 : -1);
        await store.put(layout.feature(backbone.id, e.sha256, 'hflip'), encodeFeatures(backbone.id, v));
      }
      await writeRetrainRequest(store, 'aug', { now: c.now() });
      c.advance(31);
      const out = await trainer.run('aug');
      expect(out.status).toBe('promoted');
      const version = out.status === 'promoted' ? out.version : '';
      const evaluation = JSON.parse(
        new TextDecoder().decode(
          (await store.get(layout.versionFile('aug', version, 'evaluation.json')))!.body,
        ),
      );
      const { nTrain, nValidation } = evaluation.config;
      // Every training photo contributes its flipped view too; validation holds photos only.
      expect(nTrain + nValidation).toBe(20 + nTrain / 2);
      expect(nValidation).toBeGreaterThan(0);
    });

    /** Seeds a project, trains it once and reads back the promoted version and its evaluation. */
    async function trainOnce(project: string, counts: Record<string, number>, settings?: object) {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, project, counts);
      if (settings) await store.put(layout.projectSettings(project), JSON.stringify(settings));
      await writeRetrainRequest(store, project, { now: c.now() });
      c.advance(31);
      const out = await trainer.run(project);
      const read = await readVersion(store, project, out.status === 'promoted' ? out.version : '');
      return { read, evaluation: JSON.parse(new TextDecoder().decode(read.files.get('evaluation.json')!)) };
    }

    it("weighs labels by the project's classWeight, balanced by default, and records it in the version", async () => {
      const counts = { hat: 40, shoes: 8 };
      const byDefault = await trainOnce('weights-default', counts);
      const unweighted = await trainOnce('weights-none', counts, { classWeight: 'none' });
      expect(byDefault.evaluation.config.classWeight).toBe('balanced');
      expect(unweighted.evaluation.config.classWeight).toBe('none');
      // The same photos weighed differently make a different head.
      const weightsOf = (r: typeof byDefault) => Buffer.from(r.read.files.get('head.bin')!);
      expect(weightsOf(unweighted).equals(weightsOf(byDefault))).toBe(false);
    });

    it('retrains unchanged photos after a training-time setting changed, and only then', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'resettle', { hat: 12, shoes: 12 });
      const train = async () => {
        await writeRetrainRequest(store, 'resettle', { now: c.now() });
        c.advance(31);
        return trainer.run('resettle');
      };
      const first = await train();
      expect(first.status).toBe('promoted');
      const v1 = await readVersion(store, 'resettle', first.status === 'promoted' ? first.version : '');
      expect(v1.manifest.trainedWith).toMatchObject({ classWeight: 'balanced', trainingMode: 'auto' });
      expect((await train()).status).toBe('unchanged');
      // The API reads rejectUnknown itself: changing it retrains nothing.
      await store.put(layout.projectSettings('resettle'), JSON.stringify({ rejectUnknown: true }));
      expect((await train()).status).toBe('unchanged');
      await store.put(
        layout.projectSettings('resettle'),
        JSON.stringify({ rejectUnknown: true, classWeight: 'none' }),
      );
      const second = await train();
      expect(['promoted', 'candidate']).toContain(second.status);
      const v2 = await readVersion(store, 'resettle', 'version' in second ? second.version! : '');
      expect(v2.manifest.trainedWith).toMatchObject({ classWeight: 'none' });
      expect(v2.manifest.datasetSnapshot).toBe(v1.manifest.datasetSnapshot);
      expect((await train()).status).toBe('unchanged');
    });

    it('records in each version how predictFlip serves it: by default only unsure photos are mirrored', async () => {
      const { read } = await trainOnce('flip-default', { hat: 12, shoes: 12 });
      expect(read.manifest.serving).toEqual({ flip: true, flipBelow: UNSURE_FLIP_BELOW });
      const { store, index, c, trainer } = await setup();
      for (const [project, settings, serving] of [
        ['flip-all', { predictFlip: true }, { flip: true }],
        ['flip-higher', { flipBelow: 0.8 }, { flip: true, flipBelow: 0.8 }],
        ['flip-off', { predictFlip: false }, { flip: false }],
        ['no-mirrors', { augmentations: [] }, { flip: false }],
      ] as const) {
        await seed(store, index, project, { hat: 12, shoes: 12 });
        await store.put(layout.projectSettings(project), JSON.stringify(settings));
        await writeRetrainRequest(store, project, { now: c.now() });
        c.advance(31);
        const out = await trainer.run(project);
        const v = await readVersion(store, project, out.status === 'promoted' ? out.version : '');
        expect(v.manifest.serving, project).toEqual(serving);
      }
    });

    it('lowers the flip gate of a version that would mirror more validation photos than maxFlipShare, and records it', async () => {
      const { read, evaluation } = await trainOnce(
        'flip-capped',
        { hat: 20, shoes: 20 },
        { flipBelow: 1, maxFlipShare: 0 },
      );
      // Under flipBelow 1 every photo would be mirrored; a share of 0 puts the gate at the least sure validation photo.
      const lowest = Math.min(...evaluation.validationExamples.map((e: { score: number }) => e.score));
      expect(lowest).toBeLessThan(1);
      expect(read.manifest.serving).toEqual({ flip: true, flipBelow: lowest });
      expect(evaluation.flipGate).toEqual({
        requestedBelow: 1,
        flipBelow: lowest,
        maxShare: 0,
        validationShare: 0,
      });
      const { evaluation: uncapped } = await trainOnce('flip-uncapped', { hat: 20, shoes: 20 });
      expect(uncapped.flipGate).toMatchObject({
        requestedBelow: UNSURE_FLIP_BELOW,
        maxShare: MAX_FLIP_SHARE,
      });
      expect(uncapped.flipGate.validationShare).toBeLessThanOrEqual(MAX_FLIP_SHARE);
    });

    it('calibrates an outlier detector on validation and records it in evaluation.json', async () => {
      const { read, evaluation } = await trainOnce('ood', { hat: 40, shoes: 40, pants: 40 });
      expect(evaluation.outlier).toMatchObject({ method: 'mahalanobis+residual+doubt' });
      expect(evaluation.outlier.acceptedRate).toBeGreaterThanOrEqual(0.95);
      expect(evaluation.outlier.validationPhotos).toBeGreaterThanOrEqual(10);
      expect(evaluation.outlier.heldOutAuroc.perLabel).toHaveLength(1);
      expect(Object.keys(read.manifest.head.files)).toEqual(
        expect.arrayContaining(['outlier.json', 'outlier.bin']),
      );
    });

    it('stores no outlier detector, and records why, with fewer than 10 validation photos', async () => {
      const { read, evaluation } = await trainOnce('few', { hat: 12, shoes: 12 });
      expect(evaluation.outlier).toMatchObject({
        method: null,
        reason: expect.stringMatching(/fewer than the 10/),
      });
      expect(Object.keys(read.manifest.head.files)).not.toContain('outlier.json');
    });

    it('refuses to train with too few images, naming the short labels and what they need', async () => {
      const { store, index, c, trainer } = await setup();
      await seed(store, index, 'small', { hat: 8, shoes: 2, pants: 3 });
      await writeRetrainRequest(store, 'small', { now: c.now() });
      c.advance(31);
      const out = await trainer.run('small');
      expect(out.status).toBe('refused');
      expect(out.status === 'refused' && out.message).toMatch(/shoes.*2.*3 more/s);
      expect(out.status === 'refused' && out.message).toMatch(/pants.*3.*2 more/s);
      expect((await readTrainingState(store, 'small'))?.lastOutcome?.status).toBe('refused');
    });
  });
}

suite('file-system store', async () =>
  createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-train-')) }));

const endpoint = inject('motoEndpoint');
if (endpoint) {
  suite('S3 via moto_server', async () => (await motoBucket(endpoint, 'hs-train')).store);
} else {
  console.warn(`[project training] S3 variant skipped: ${inject('motoSkipReason')}`);
}
