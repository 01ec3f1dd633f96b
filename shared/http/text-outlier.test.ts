import { beforeAll, describe, expect, it } from 'vitest';
import { type EdgeFixture, edgeFixture } from '../../test/support/edge-test-support.js';
import { overwriteVersionFile } from '../../test/support/publish-test-model.js';
import { generatedIntentRows, publishTextModel, tinyTextBackbone } from '../../test/support/text-project.js';
import { layout } from '../layout/index.js';
import { readPointer, readVersion, VERSION_FILES } from '../models/index.js';
import type { ObjectStore } from '../store/index.js';
import { tf } from '../tf/tf-runtime.js';
import { createApp } from './app.js';

let fx: EdgeFixture;
let tiny: Awaited<ReturnType<typeof tinyTextBackbone>>;
/** A store with 'calibrated' (120 generated texts: a detector) and 'old' (too few validation texts: none). */
let store: ObjectStore;
let calibrated: string;
let evaluationOutlier: Record<string, unknown>;

interface Body {
  model: { version: string; outlierThreshold: number | null };
  predictions: { label: string; score: number }[];
  unknown: boolean | null;
  outlierScore: number | null;
}

const OFF_TOPIC = [
  'zqxv wplkj mmrtq fbbz',
  'The orchestra rehearsed the second symphony under a new conductor',
  'Photosynthesis converts sunlight into chemical energy in plant leaves',
];

beforeAll(async () => {
  fx = await edgeFixture();
  tiny = await tinyTextBackbone();
  store = await fx.newStore();
  calibrated = await publishTextModel(store, 'calibrated', {
    backbone: fx.backbone,
    text: tiny,
    rows: generatedIntentRows(),
  });
  // A validation split of 3 texts calibrates nothing: the version is stored as versions trained before the
  // detector were, without its files.
  await publishTextModel(store, 'old', {
    backbone: fx.backbone,
    text: tiny,
    trainOptions: { validationFraction: 0.1 },
  });
  const { files } = await readVersion(store, 'calibrated', calibrated);
  const evaluation = JSON.parse(new TextDecoder().decode(files.get(VERSION_FILES.evaluation)!));
  evaluationOutlier = evaluation.outlier;
});

const appOn = (s: ObjectStore) =>
  createApp({ store: s, backbone: async () => fx.backbone, config: { requireKeys: false } });

async function predict(app: ReturnType<typeof appOn>, project: string, text: string, query = '') {
  const res = await app.request(`/v1/projects/${project}/predict${query}`, {
    method: 'POST',
    body: JSON.stringify({ text }),
    headers: { 'content-type': 'application/json' },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Body;
}

describe('a text version with an outlier detector', () => {
  it("records the detector's method, input, threshold and accepted rate in evaluation.json", () => {
    expect(evaluationOutlier).toMatchObject({
      method: 'msp',
      threshold: expect.any(Number),
      input: expect.stringMatching(/probabilities/),
    });
    expect(evaluationOutlier.validationPhotos as number).toBeGreaterThanOrEqual(10);
    // The threshold is the validation texts' 95th percentile: at least 95% of them, and not all by much more.
    expect(evaluationOutlier.acceptedRate as number).toBeGreaterThanOrEqual(0.95);
    expect(evaluationOutlier.acceptedRate as number).toBeLessThan(1);
  });

  it('answers unknown: false with its threshold for most texts it was trained on', async () => {
    const app = appOn(store);
    const rows = generatedIntentRows();
    const bodies = await Promise.all(rows.slice(0, 30).map(([t]) => predict(app, 'calibrated', t)));
    expect(bodies[0]!.model.outlierThreshold).toBeCloseTo(evaluationOutlier.threshold as number, 4);
    const known = bodies.filter((b) => b.unknown === false).length;
    expect(known / bodies.length).toBeGreaterThanOrEqual(0.9);
    for (const b of bodies) expect(b.outlierScore).toEqual(expect.any(Number));
  });

  it("answers the head's doubt as the outlier score: 1 minus the top label's score", async () => {
    const app = appOn(store);
    for (const text of [generatedIntentRows()[3]![0], ...OFF_TOPIC]) {
      const b = await predict(app, 'calibrated', text);
      expect(b.outlierScore!).toBeCloseTo(1 - b.predictions[0]!.score, 5);
    }
  });

  it('scores gibberish and off-topic English above its threshold, labels still given', async () => {
    const app = appOn(store);
    for (const text of OFF_TOPIC) {
      const b = await predict(app, 'calibrated', text);
      expect(b.unknown, text).toBe(true);
      expect(b.outlierScore!).toBeGreaterThan(b.model.outlierThreshold!);
      expect(b.predictions.length).toBeGreaterThan(0);
    }
  });

  it('returns no labels for an unknown text with ?rejectUnknown=true, and labels for a known one', async () => {
    const app = appOn(store);
    expect(await predict(app, 'calibrated', OFF_TOPIC[0]!, '?rejectUnknown=true')).toMatchObject({
      unknown: true,
      predictions: [],
    });
    const [known] = generatedIntentRows()[0]!;
    const b = await predict(app, 'calibrated', known, '?rejectUnknown=true');
    expect(b.unknown).toBe(false);
    expect(b.predictions.length).toBeGreaterThan(0);
  });

  it("rejects unknown texts in a batch when the project's settings say so", async () => {
    const s = await fx.newStore();
    const version = await publishTextModel(s, 'strict', {
      backbone: fx.backbone,
      text: tiny,
      rows: generatedIntentRows(),
    });
    const settings = await s.get(layout.projectSettings('strict'));
    const current = settings ? JSON.parse(new TextDecoder().decode(settings.body)) : {};
    await s.put(layout.projectSettings('strict'), JSON.stringify({ ...current, rejectUnknown: true }));
    const res = await appOn(s).request('/v1/projects/strict/predict', {
      method: 'POST',
      body: JSON.stringify({ texts: [generatedIntentRows()[0]![0], OFF_TOPIC[0]] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { model: { version: string }; results: Body[] };
    expect(body.model.version).toBe(version);
    expect(body.results.map((r) => r.unknown)).toEqual([false, true]);
    expect(body.results[0]!.predictions.length).toBeGreaterThan(0);
    expect(body.results[1]!.predictions).toEqual([]);

    // A corrupt detector is refused like any corrupt version: nothing serves it.
    await overwriteVersionFile(s, 'strict', version, VERSION_FILES.outlierWeights, new Uint8Array(64));
    const fresh = appOn(s);
    const refused = await fresh.request('/v1/projects/strict/predict', {
      method: 'POST',
      body: 'where is my card',
      headers: { 'content-type': 'text/plain' },
    });
    const error = (await refused.json()) as { error: { code: string; message: string } };
    expect(refused.status, JSON.stringify(error)).toBe(503);
    expect(error.error.message).toMatch(/outlier\.bin.*sha256/);
  });

  it('holds no more tensors after many text predictions than after the first', async () => {
    const app = appOn(store);
    await predict(app, 'calibrated', OFF_TOPIC[1]!);
    const before = tf.memory().numTensors;
    for (const [t] of generatedIntentRows().slice(0, 5)) await predict(app, 'calibrated', t);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('a text version without an outlier detector', () => {
  it('records why (too few validation texts) and serves unknown: null, rejectUnknown or not', async () => {
    const version = (await readPointer(store, 'old'))!.pointer.version;
    const { manifest, files } = await readVersion(store, 'old', version);
    expect(VERSION_FILES.outlierJson in manifest.head.files).toBe(false);
    const evaluation = JSON.parse(new TextDecoder().decode(files.get(VERSION_FILES.evaluation)!));
    expect(evaluation.outlier).toMatchObject({ method: null, reason: expect.stringMatching(/texts/) });
    const b = await predict(appOn(store), 'old', OFF_TOPIC[0]!, '?rejectUnknown=true');
    expect(b).toMatchObject({ unknown: null, outlierScore: null, model: { outlierThreshold: null } });
    expect(b.predictions.length).toBeGreaterThan(0);
  });
});
