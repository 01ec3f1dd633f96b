import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { formatStatus, requestTraining } from '../../functions/cli/project-commands.js';
import { type Backbone, loadBackbone } from '../../shared/backbone/index.js';
import { readEnv } from '../../shared/config.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { readQuarantine } from '../../shared/dataset/quarantine.js';
import type { UploadEvent } from '../../shared/dataset/s3-events.js';
import { localSequencer } from '../../shared/dataset/sequencer.js';
import { layout } from '../../shared/layout/index.js';
import { readPointer, readVersion } from '../../shared/models/index.js';
import {
  createUploadExtractor,
  type UploadExtractor,
  type UploadOutcome,
} from '../../shared/pipeline/extract-uploads.js';
import { projectStatus } from '../../shared/pipeline/project-status.js';
import {
  createRetrainRequester,
  type RetrainRequester,
  readRetrainRequest,
} from '../../shared/pipeline/retrain-requests.js';
import {
  createProjectTrainer,
  type TrainingState,
  type TrainProjectDeps,
  trainingBackbone,
} from '../../shared/pipeline/train-project.js';
import type { TrainingProgress } from '../../shared/pipeline/training-progress.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { clothingMini } from '../support/fixtures.js';
import { motoBucket } from '../support/moto.js';
import { fsRawPut, type RawPut, recordingReads, s3RawPut } from '../support/store-wrappers.js';
import { testBackbone } from '../support/test-backbone.js';

// Ordinary mess in a dataset (issue 12, items 1-3, 6 and the progress of `train --wait`), driven through the real
// extractor, dataset index, trainer and CLI functions on both stores, the way the local stack wires them.

let backbone: Backbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
});

const photos = clothingMini('train');
const of = (label: string) => photos.filter((p) => p.label === label);
const fileName = (p: { path: string }) => p.path.split('/').pop()!;
const fast = { headTypes: ['softmax' as const], softmaxL2: [1e-3, 1e-2] };
const LIMIT = 20 * 1024 * 1024;

/** Another tool wrote this key, which the store's own API refuses (a control character). */

interface Env {
  store: ObjectStore;
  rawPut: RawPut;
  /**
   * Whether the store's listing includes a key with a control character. S3 lists it; the FS store's listing
   * fails on it (a store matter, not the extractor's), so there the key arrives only as an event.
   */
  listsControlKeys: boolean;
}

/** The extractor, index, retrain requests and trainer, wired as shared/local/local-stack.ts wires them. */
function pipeline(store: ObjectStore, extra: Partial<TrainProjectDeps> = {}) {
  const index: DatasetIndex = createDatasetIndex(store);
  const retrain: RetrainRequester = createRetrainRequester(store, { notify: async () => {} });
  const extractor: UploadExtractor = createUploadExtractor({
    store,
    backbone,
    index,
    requestRetrain: (p) => retrain.request(p),
  });
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(backbone),
    quietSeconds: 0,
    trainOptions: fast,
    ...extra,
  });
  /** Handles a batch of events as one pass does: a throw for any of them fails the whole pass. */
  const handle = async (events: UploadEvent[]): Promise<UploadOutcome[]> => {
    const outcomes = await Promise.all(events.map((e) => extractor.handle(e)));
    await retrain.flush();
    return outcomes;
  };
  /**
   * One reconciler pass: lists uploads/ and emits a created event for every key the index has not seen with
   * the listed ETag. This is the rule the local reconciler applies (shared/local/upload-reconciler.ts).
   */
  const pass = async (): Promise<{ events: UploadEvent[]; outcomes: UploadOutcome[] }> => {
    const events: UploadEvent[] = [];
    const at = new Date().toISOString();
    const entries = new Map<string, Awaited<ReturnType<DatasetIndex['entries']>>>();
    for await (const o of store.list('uploads/')) {
      const project = o.key.split('/')[1]!;
      if (!entries.has(project)) entries.set(project, await index.entries(project));
      const e = entries.get(project)!.get(o.key);
      const known = e && e.state !== 'deleted' && 'etag' in e && e.etag === o.etag;
      if (!known) events.push({ type: 'created', key: o.key, sequencer: localSequencer(), eventTime: at });
    }
    return { events, outcomes: await handle(events) };
  };
  return { index, retrain, extractor, trainer, handle, pass };
}

async function putPhotos(store: ObjectStore, project: string, labels: Record<string, number>) {
  const keys: string[] = [];
  for (const [label, n] of Object.entries(labels)) {
    for (const p of of(label).slice(0, n)) {
      const key = `uploads/${project}/${label}/${fileName(p)}`;
      await store.put(key, p.bytes);
      keys.push(key);
    }
  }
  return keys;
}

async function evaluationOf(store: ObjectStore, project: string, version: string) {
  const o = await store.get(`${layout.versionPrefix(project, version)}evaluation.json`);
  return JSON.parse(new TextDecoder().decode(o!.body)) as Record<string, unknown>;
}

function suite(name: string, makeEnv: () => Promise<Env>) {
  describe(`dataset mess (${name})`, () => {
    it('trains with a photo uploaded twice in one label and once more in another, counting each photo once', async () => {
      const { store } = await makeEnv();
      const p = pipeline(store);
      await putPhotos(store, 'closet', { hat: 8, shoes: 8 });
      const [first, second] = of('hat');
      const dupKey = 'uploads/closet/hat/copy of first.jpg';
      await store.put(dupKey, first!.bytes);
      await p.pass();
      // Relabelling by copying: the second hat photo goes into shoes/ later; the old key stays. Later than the
      // store's timestamp resolution (S3: one second), so the rule, not a tie-break, decides.
      await new Promise((r) => setTimeout(r, 1100));
      const relabelled = 'uploads/closet/shoes/relabelled.jpg';
      await store.put(relabelled, second!.bytes);
      expect((await p.pass()).events.map((e) => e.key)).toEqual([relabelled]);

      const outcome = await p.trainer.run('closet');
      expect(outcome.status).toBe('promoted');
      const version = (outcome as { version: string }).version;
      const evaluation = await evaluationOf(store, 'closet', version);
      const oldKey = `uploads/closet/hat/${fileName(second!)}`;
      expect(evaluation.examples).toBe(16);
      expect(evaluation.perLabelCounts).toEqual({ hat: 7, shoes: 9 });
      const twins = [dupKey, `uploads/closet/hat/${fileName(first!)}`].sort();
      expect(evaluation.duplicates).toEqual([
        expect.objectContaining({ label: 'hat', keys: twins, kept: twins[0] }),
      ]);
      expect(evaluation.conflicts).toEqual([
        expect.objectContaining({
          keys: [
            expect.objectContaining({ key: oldKey, label: 'hat' }),
            expect.objectContaining({ key: relabelled, label: 'shoes' }),
          ],
          winner: { key: relabelled, label: 'shoes' },
        }),
      ]);

      const status = await projectStatus(store, 'closet');
      expect(status.dataset).toMatchObject({
        examples: 16,
        keys: 18,
        duplicateKeys: 1,
        labels: { hat: 7, shoes: 9 },
      });
      const text = formatStatus(status);
      expect(text).toContain(`${relabelled} counts as 'shoes'; also uploaded as ${oldKey} (hat)`);
      expect(text).toMatch(/duplicates: 1 file/);
    });

    it('sets an oversized upload aside once, with its ETag and without reading or copying it, and trains the rest', async () => {
      const { store: raw } = await makeEnv();
      const { store, reads } = recordingReads(raw);
      const p = pipeline(store);
      await putPhotos(raw, 'big', { hat: 6, shoes: 6 });
      const huge = 'uploads/big/hat/panorama.png';
      const body = new Uint8Array(LIMIT + 1024);
      body.set([0x89, 0x50, 0x4e, 0x47]);
      await raw.put(huge, body);
      const listed = await raw.head(huge);

      const first = await p.pass();
      expect(first.outcomes.find((o) => o.key === huge)).toMatchObject({
        status: 'quarantined',
        code: 'upload_too_large',
      });
      expect(reads).not.toContain(huge);
      const record = await readQuarantine(raw, huge);
      expect(record).toMatchObject({ code: 'upload_too_large', etag: listed!.etag, bytes: LIMIT + 1024 });
      expect(record!.message).toMatch(/not copied into quarantine/);
      const copies: string[] = [];
      for await (const o of raw.list(layout.quarantinePrefix('big'))) copies.push(o.key);
      expect(copies.filter((k) => k.endsWith('.bin'))).toEqual([]);
      expect(await p.index.entry('big', huge)).toMatchObject({ state: 'quarantined', etag: listed!.etag });

      const request = await readRetrainRequest(raw, 'big');
      const second = await p.pass();
      expect(second.events).toEqual([]);
      // A second look at the same ETag (a re-put of the same bytes, a restarted reconciler) changes nothing.
      const again = await p.handle([
        { type: 'created', key: huge, sequencer: localSequencer(), eventTime: new Date().toISOString() },
      ]);
      expect(again[0]).toMatchObject({ status: 'quarantined', code: 'upload_too_large' });
      expect(await readQuarantine(raw, huge)).toEqual(record);
      expect(await readRetrainRequest(raw, 'big')).toEqual(request);
      expect(reads).not.toContain(huge);

      const outcome = await p.trainer.run('big');
      expect(outcome.status).toBe('promoted');
      expect((await projectStatus(raw, 'big')).quarantined).toEqual([
        expect.objectContaining({ key: huge, code: 'upload_too_large' }),
      ]);
    });

    it('sets a key with a control character aside as invalid_file_name and goes on with every other upload', async () => {
      const { store, rawPut, listsControlKeys } = await makeEnv();
      const p = pipeline(store);
      const tab = 'uploads/mixed/hat/tab\tname.jpg';
      await rawPut(tab, of('hat')[0]!.bytes);
      const others = await putPhotos(store, 'tidy', { hat: 6, shoes: 6 });
      const at = new Date().toISOString();
      // As a notification (or a reconciler that lists it) delivers it, in one batch with another project's uploads.
      const events: UploadEvent[] = [tab, ...others].map((key) => ({
        type: 'created',
        key,
        sequencer: localSequencer(),
        eventTime: at,
      }));
      const outcomes = await p.handle(events);
      expect(outcomes[0]).toMatchObject({ key: tab, status: 'quarantined', code: 'invalid_file_name' });
      expect(outcomes.slice(1).every((o) => o.status === 'indexed')).toBe(true);
      const record = await readQuarantine(store, tab);
      expect(record).toMatchObject({ key: tab, code: 'invalid_file_name', project: 'mixed' });
      expect(await p.index.entry('mixed', tab)).toMatchObject({
        state: 'quarantined',
        code: 'invalid_file_name',
      });
      expect((await p.trainer.run('tidy')).status).toBe('promoted');
      if (listsControlKeys) {
        // Recorded with the ETag the listing shows, so a reconciler treats the key as seen: no event next pass.
        let listed: string | undefined;
        for await (const o of store.list('uploads/mixed/')) if (o.key === tab) listed = o.etag;
        expect(listed).toBeDefined();
        expect(record!.etag).toBe(listed);
        expect((await p.pass()).events).toEqual([]);
      }
      expect((await projectStatus(store, 'mixed')).quarantined).toEqual([
        expect.objectContaining({ key: tab, code: 'invalid_file_name' }),
      ]);
    });

    it('answers train --wait with the version that serves the dataset when the automatic retrain trained it first', async () => {
      const { store } = await makeEnv();
      const states: TrainingState[] = [];
      const watched = watchTrainingState(store, states);
      const p = pipeline(watched, { progressIntervalMs: 0 });
      await putPhotos(store, 'race', { hat: 6, shoes: 6 });
      await p.pass();
      // The quiet window ends first: the automatic retrain trains the dataset.
      const auto = await p.trainer.run('race');
      expect(auto.status).toBe('promoted');
      const target = { store, api: 'http://127.0.0.1:9', local: true, env: readEnv({}) };
      const progress: TrainingProgress[] = [];
      const waiting = requestTraining(target, 'race', {
        wait: true,
        force: false,
        pollMs: 10,
        onProgress: ({ progress: pr }) => progress.push(pr),
      });
      // `train --wait`'s request is consumed by the next run, which finds nothing new to train.
      while (!(await readRetrainRequest(store, 'race'))?.immediate)
        await new Promise((r) => setTimeout(r, 5));
      await p.trainer.run('race');
      const answer = await waiting;
      const current = await readPointer(store, 'race');
      const manifest = (await readVersion(store, 'race', current!.pointer.version)).manifest;
      expect(answer).toMatchObject({
        status: 'unchanged',
        version: manifest.version,
        mode: 'head',
        metrics: manifest.metrics,
      });
      // The automatic run reported its phases while it trained, with steps and an estimate; the end cleared them.
      const during = states.filter((s) => s.state === 'training' && s.progress).map((s) => s.progress!);
      const search = during.filter((s) => s.phase === 'head search' && s.step !== undefined);
      expect(search.map((s) => [s.step, s.of])).toEqual([
        [1, 2],
        [2, 2],
      ]);
      expect(
        during.find((s) => s.phase === 'head search' && s.step === 1)?.etaSeconds,
      ).toBeGreaterThanOrEqual(0);
      expect(states.at(-1)?.progress).toBeUndefined();
    });

    it('shows progress to train --wait while the training runs', async () => {
      const { store } = await makeEnv();
      let shown!: () => void;
      const seen = new Promise<void>((r) => {
        shown = r;
      });
      // The training holds before its pointer flip until the waiting CLI has shown a progress line.
      // (Bounded, so that a CLI that never shows progress fails the assertions below instead of hanging.)
      const p = pipeline(store, {
        progressIntervalMs: 0,
        beforeFlip: () => Promise.race([seen, new Promise<void>((r) => setTimeout(r, 15_000))]),
      });
      await putPhotos(store, 'slow', { hat: 6, shoes: 6 });
      await p.pass();
      const lines: string[] = [];
      const target = { store, api: 'http://127.0.0.1:9', local: true, env: readEnv({}) };
      const waiting = requestTraining(target, 'slow', {
        wait: true,
        force: false,
        pollMs: 5,
        onProgress: ({ line }) => {
          lines.push(line);
          shown();
        },
      });
      while (!(await readRetrainRequest(store, 'slow'))?.immediate)
        await new Promise((r) => setTimeout(r, 5));
      await p.trainer.run('slow', { ignoreQuietWindow: true });
      expect((await waiting)?.status).toBe('promoted');
      expect(lines.length).toBeGreaterThan(0);
      expect(
        lines.every((l) =>
          /^(loading features|head search|label suspects|writing version): .*\d+ s elapsed/.test(l),
        ),
      ).toBe(true);
    });
  });
}

/** Every training state written through this store, parsed: what a poller could have seen. */
function watchTrainingState(store: ObjectStore, states: TrainingState[]): ObjectStore {
  return {
    ...recordingReads(store).store,
    put: async (k, b, o) => {
      const res = await store.put(k, b, o);
      if (/^training\/[^/]+\/state\.json$/.test(k)) {
        states.push(JSON.parse(typeof b === 'string' ? b : new TextDecoder().decode(b)) as TrainingState);
      }
      return res;
    },
  };
}

suite('file-system store', async () => {
  const root = mkdtempSync(join(tmpdir(), 'headstart-mess-'));
  const store = createFsStore({ root });
  return {
    store,
    listsControlKeys: false,
    // Another tool writing into the store's directory, as `cp` into the home would.
    rawPut: fsRawPut(root),
  };
});

const endpoint = inject('motoEndpoint');
if (!endpoint) {
  console.warn(`[dataset mess] S3 variant skipped: ${inject('motoSkipReason')}`);
  describe.skip('dataset mess (S3 via moto_server)', () => {
    it('needs moto_server', () => {});
  });
} else {
  suite('S3 via moto_server', async () => {
    const { store, client, bucket } = await motoBucket(endpoint, 'hs-mess');
    return { store, rawPut: s3RawPut(client, bucket), listsControlKeys: true };
  });
}
