import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeFixture,
  edgeFixture,
  evalPhotos,
  manualClock,
  testApp,
} from '../../test/support/edge-test-support.js';
import {
  extractTrainingFeatures,
  overwriteVersionFile,
  publishTestModel,
  type TrainedTestHead,
} from '../../test/support/publish-test-model.js';
import { decodeImage } from '../image/index.js';
import { layout } from '../layout/index.js';
import { VERSION_FILES } from '../models/index.js';
import { calibrateOutlierDetector, encodeOutlierDetector, type OutlierDetector } from '../outlier/index.js';
import { listReviewItems } from '../review/index.js';
import type { ObjectStore } from '../store/index.js';
import { tf } from '../tf/tf-runtime.js';
import { trainHead } from '../train/index.js';

/** Trained without it: its photos are the near-off inputs. */
const LEFT_OUT = 'shoes';

let fx: EdgeFixture;
let trained: TrainedTestHead;
let detector: OutlierDetector;
let noise: Uint8Array;
let flat: Uint8Array;
/** The left-out photo the detector finds most unusual. */
let unusual: Uint8Array;
/**
 * The same detector with its threshold between a trained photo's score and `unusual`'s, for the tests of what
 * serving does with an unknown answer: a 12-per-label fixture is too small to calibrate a threshold that a
 * near-off photo reliably crosses on a 3,264-feature backbone (bench:ood measures detection on real data).
 */
let splitting: OutlierDetector;

interface Body {
  model: { version: string; outlierThreshold: number | null };
  predictions: { label: string; score: number }[];
  unknown: boolean | null;
  outlierScore: number | null;
}

async function pixelsOf(bytes: Uint8Array) {
  const b = fx.backbone;
  return (await decodeImage(bytes, { size: b.inputSize, policy: b.manifest.preprocessing.resize })).data;
}

beforeAll(async () => {
  fx = await edgeFixture();
  const all = await extractTrainingFeatures(fx.backbone);
  const keep = all.labels.flatMap((l, i) => (all.labelNames[l] === LEFT_OUT ? [] : [i]));
  const labelNames = all.labelNames.filter((l) => l !== LEFT_OUT);
  const dim = all.dim;
  const rows = (idx: number[], src: Float32Array) => {
    const out = new Float32Array(idx.length * dim);
    idx.forEach((r, j) => {
      out.set(src.subarray(r * dim, (r + 1) * dim), j * dim);
    });
    return out;
  };
  const labels = keep.map((i) => labelNames.indexOf(all.labelNames[all.labels[i]!]!));
  const result = await trainHead(
    { features: rows(keep, all.features), dim, labels, labelNames, ids: keep.map((i) => all.ids[i]!) },
    { headTypes: ['softmax'], softmaxL2: [1e-2] },
  );
  trained = { result, backbone: fx.backbone.manifest };
  // Calibrated on the eval photos of the trained labels, as training calibrates on its validation split.
  const evals = evalPhotos().filter((p) => p.label !== LEFT_OUT);
  const evalFeatures = await fx.backbone.extract(await Promise.all(evals.map((p) => pixelsOf(p.bytes))));
  const features = new Float32Array((keep.length + evals.length) * dim);
  features.set(rows(keep, all.features));
  evalFeatures.forEach((f, j) => {
    features.set(f, (keep.length + j) * dim);
  });
  const calibrated = calibrateOutlierDetector({
    features,
    dim,
    labels: [...labels, ...evals.map((p) => labelNames.indexOf(p.label))],
    trainRows: keep.map((_, i) => i),
    validationRows: evals.map((_, j) => keep.length + j),
  });
  detector = calibrated.detector!;
  const off = leftOut();
  const offScores = detector.score(
    Float32Array.from(
      (await fx.backbone.extract(await Promise.all(off.map((p) => pixelsOf(p.bytes))))).flatMap((f) => [
        ...f,
      ]),
    ),
    off.length,
  );
  unusual = off[offScores.indexOf(Math.max(...offScores))]!.bytes;
  const [knownScore] = detector.score((await fx.backbone.extract([await pixelsOf(evals[0]!.bytes)]))[0]!, 1);
  splitting = detector.withThreshold((knownScore! + Math.max(...offScores)) / 2);
  const size = 256;
  const rnd = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 2654435761) >>> 24);
  noise = new Uint8Array(
    await sharp(rnd, { raw: { width: size, height: size, channels: 3 } })
      .jpeg()
      .toBuffer(),
  );
  flat = new Uint8Array(
    await sharp({
      create: { width: size, height: size, channels: 3, background: { r: 128, g: 128, b: 128 } },
    })
      .jpeg()
      .toBuffer(),
  );
});

function detectorFiles(d: OutlierDetector) {
  const { json, weights } = encodeOutlierDetector(d);
  return { [VERSION_FILES.outlierJson]: json, [VERSION_FILES.outlierWeights]: weights } as unknown as Record<
    'head.json',
    string
  >;
}

async function storeWith(
  project: string,
  withDetector: boolean,
  which: () => OutlierDetector = () => detector,
): Promise<ObjectStore> {
  const store = await fx.newStore();
  await publishTestModel(store, project, trained, {
    version: 'v1',
    ...(withDetector ? { files: detectorFiles(which()) } : {}),
  });
  return store;
}

async function predict(
  app: ReturnType<typeof testApp>['app'],
  project: string,
  image: Uint8Array,
  query = '',
) {
  const res = await app.request(`/v1/projects/${project}/predict${query}`, {
    method: 'POST',
    body: image,
    headers: { 'content-type': 'image/jpeg' },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Body;
}

const inDistribution = () => evalPhotos().filter((p) => p.label !== LEFT_OUT);
const leftOut = () => evalPhotos().filter((p) => p.label === LEFT_OUT);

describe('a version with an outlier detector', () => {
  it('accepts at least 95% of its calibration photos and reports its threshold', async () => {
    const { app } = testApp(fx, await storeWith('closet', true));
    const bodies = await Promise.all(inDistribution().map((p) => predict(app, 'closet', p.bytes)));
    expect(bodies[0]!.model.outlierThreshold).toBeCloseTo(detector.threshold!, 4);
    const accepted = bodies.filter((b) => b.unknown === false).length;
    expect(accepted / bodies.length).toBeGreaterThanOrEqual(0.95);
    for (const b of bodies) expect(b.predictions.length).toBeGreaterThan(0);
  });

  it('scores noise, a flat image and photos of a label left out of training above the typical trained photo, labels unchanged', async () => {
    const { app } = testApp(fx, await storeWith('closet', true));
    const known = await Promise.all(inDistribution().map((p) => predict(app, 'closet', p.bytes)));
    const median = (bs: Body[]) => bs.map((b) => b.outlierScore!).sort((a, b) => a - b)[bs.length >> 1]!;
    for (const image of [noise, flat]) {
      const b = await predict(app, 'closet', image);
      expect(b.outlierScore!).toBeGreaterThan(median(known));
      expect(b.predictions.length).toBeGreaterThan(0);
    }
    const shoes = await Promise.all(leftOut().map((p) => predict(app, 'closet', p.bytes)));
    // Medians: one odd trained-label photo can outscore every other photo on its own.
    expect(median(shoes)).toBeGreaterThan(median(known));
  });

  it('answers unknown above the threshold and known below it, with the same labels either way', async () => {
    const { app } = testApp(fx, await storeWith('split', true, () => splitting));
    const odd = await predict(app, 'split', unusual);
    expect(odd).toMatchObject({ unknown: true, model: { outlierThreshold: splitting.threshold } });
    expect(odd.outlierScore!).toBeGreaterThan(odd.model.outlierThreshold!);
    expect(odd.predictions.length).toBeGreaterThan(0);
    expect((await predict(app, 'split', inDistribution()[0]!.bytes)).unknown).toBe(false);
  });

  it('returns no labels for an unknown image with ?rejectUnknown=true, and all of them for a known one', async () => {
    const { app } = testApp(fx, await storeWith('closet', true, () => splitting));
    const rejected = await predict(app, 'closet', unusual, '?rejectUnknown=true');
    expect(rejected).toMatchObject({ unknown: true, predictions: [] });
    const known = await predict(app, 'closet', inDistribution()[0]!.bytes, '?rejectUnknown=true');
    expect(known.unknown).toBe(false);
    expect(known.predictions.length).toBeGreaterThan(0);
  });

  it("rejects unknown images when the project's settings say so, unless the query says otherwise", async () => {
    const store = await storeWith('strict', true, () => splitting);
    await store.put(layout.projectSettings('strict'), JSON.stringify({ rejectUnknown: true }));
    const { app } = testApp(fx, store);
    expect((await predict(app, 'strict', unusual)).predictions).toEqual([]);
    expect(
      (await predict(app, 'strict', unusual, '?rejectUnknown=false')).predictions.length,
    ).toBeGreaterThan(0);
  });

  it("keeps an unknown photo for review whatever its score, with the detector's verdict", async () => {
    const store = await storeWith('queued', true, () => splitting);
    await store.put(
      layout.projectSettings('queued'),
      JSON.stringify({ review: { enabled: true, below: 0 } }),
    );
    const { app, reviews } = testApp(fx, store);
    const b = await predict(app, 'queued', unusual);
    expect(b.unknown).toBe(true);
    const known = inDistribution()[0]!.bytes;
    expect((await predict(app, 'queued', known)).unknown).toBe(false);
    await reviews.settle();
    const { items } = await listReviewItems(store, 'queued');
    expect(items).toEqual([
      expect.objectContaining({
        id: createHash('sha256').update(unusual).digest('hex'),
        reason: 'unknown',
        unknown: true,
        outlierScore: b.outlierScore,
        prediction: b.predictions[0],
      }),
    ]);
  });

  it('answers per image in a batch', async () => {
    const { app } = testApp(fx, await storeWith('closet', true, () => splitting));
    const form = new FormData();
    for (const image of [inDistribution()[0]!.bytes, unusual])
      form.append('image', new Blob([image], { type: 'image/jpeg' }));
    const res = await app.request('/v1/projects/closet/predict/batch?rejectUnknown=true', {
      method: 'POST',
      body: form,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { unknown: boolean; predictions: unknown[] }[] };
    expect(body.results.map((r) => r.unknown)).toEqual([false, true]);
    expect(body.results[1]!.predictions).toEqual([]);
    expect(body.results[0]!.predictions.length).toBeGreaterThan(0);
  });

  it('holds no more tensors after many predictions than after the first', async () => {
    const { app } = testApp(fx, await storeWith('closet', true));
    await predict(app, 'closet', noise);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await predict(app, 'closet', inDistribution()[i]!.bytes);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('a version without an outlier detector', () => {
  it('answers unknown: null and outlierScore: null, and keeps serving', async () => {
    const { app } = testApp(fx, await storeWith('old', false));
    const b = await predict(app, 'old', noise, '?rejectUnknown=true');
    expect(b).toMatchObject({ unknown: null, outlierScore: null, model: { outlierThreshold: null } });
    expect(b.predictions.length).toBeGreaterThan(0);
  });
});

describe('a version whose outlier detector is corrupt', () => {
  /** v1 serves; v2 is published with a detector, then `breakIt` damages it: v1 must keep serving. */
  async function publishBroken(breakIt: (store: ObjectStore) => Promise<unknown>) {
    const store = await storeWith('closet', true);
    const clock = manualClock();
    const { app } = testApp(fx, store, { clock: clock.now });
    expect((await predict(app, 'closet', noise)).model.version).toBe('v1');
    await publishTestModel(store, 'closet', trained, { version: 'v2', files: detectorFiles(detector) });
    await breakIt(store);
    clock.advance(31_000);
    expect((await predict(app, 'closet', noise)).model.version).toBe('v1');
    return app;
  }

  it('is refused and the previous version keeps serving', async () => {
    const app = await publishBroken((store) =>
      overwriteVersionFile(store, 'closet', 'v2', VERSION_FILES.outlierWeights, new Uint8Array(64)),
    );
    const info = (await (await app.request('/v1/projects/closet/model')).json()) as {
      refusedVersion: { version: string; message: string };
    };
    expect(info.refusedVersion.version).toBe('v2');
    expect(info.refusedVersion.message).toMatch(/outlier\.bin.*sha256/);
  });

  it('whose weights are missing is refused as well', async () => {
    await publishBroken((store) =>
      store.delete(layout.versionFile('closet', 'v2', VERSION_FILES.outlierWeights)),
    );
  });
});
