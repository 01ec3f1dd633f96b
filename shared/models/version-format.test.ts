import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FineTunedTestTop, fineTunedTestTop } from '../../test/support/publish-finetuned-model.js';
import { loadTop } from '../finetune/index.js';
import { layout } from '../layout/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { loadHead, type TrainResult, trainHead } from '../train/index.js';
import { gaussianBlobs } from '../train/synthetic-blobs.js';
import { InvalidVersionError } from './model-errors.js';
import { readVersion, readVersionFile, writeVersion } from './model-store.js';
import {
  decodeEvaluation,
  decodeSuspects,
  decodeVersion,
  encodeFineTunedVersion,
  encodeHeadVersion,
  examplesInCell,
  modeOf,
  VERSION_FILES,
  type VersionCommon,
  withSuspects,
} from './version-format.js';

const roots: string[] = [];
let store: ObjectStore;
let head: TrainResult;
let tuned: FineTunedTestTop;
const data = gaussianBlobs({ perLabel: 12, labels: 2, dim: 8, separation: 3, seed: 3 });

beforeAll(async () => {
  await initTf();
  const root = await mkdtemp(path.join(tmpdir(), 'version-format-'));
  roots.push(root);
  store = createFsStore({ root });
  head = await trainHead(data, { headTypes: ['softmax'], softmaxL2: [1e-3] });
  tuned = await fineTunedTestTop();
}, 300_000);

afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

function common(version: string): VersionCommon {
  return {
    project: 'closet',
    version,
    createdAt: new Date().toISOString(),
    metrics: { accuracy: 1, macroF1: 1, n: 4 },
    datasetSnapshot: 'd'.repeat(64),
    evaluation: { note: version },
  };
}

const where = (version: string) => `version ${version} of 'closet'`;

function encodeHead(version: string) {
  return encodeHeadVersion({
    common: common(version),
    backbone: { id: 'bb', weightsSha256: 'b'.repeat(64), inputSize: 224, featureDim: data.dim },
    head: head.head,
    type: head.config.headType,
    training: { ...head.config },
  });
}

function encodeTop(version: string) {
  const trunk = tuned.trunk.manifest;
  return encodeFineTunedVersion({
    common: common(version),
    trunk: { id: trunk.id, weightsSha256: trunk.weightsSha256, inputSize: tuned.trunk.inputSize },
    top: tuned.result.top,
    training: { bestEpoch: tuned.result.bestEpoch },
  });
}

/** Writes an encoded version to the store and reads it back whole; `files` are the names it must hold. */
async function roundTrip(encoded: ReturnType<typeof encodeHead>, version: string, files: string[]) {
  await writeVersion(store, encoded.manifest, encoded.files);
  const read = await readVersion(store, 'closet', version);
  expect([...read.files.keys()].sort()).toEqual([VERSION_FILES.evaluation, ...files].sort());
  return read;
}

describe('version format', () => {
  it('writes a head version that reads back as a head predicting what the trained head predicts', async () => {
    const read = await roundTrip(encodeHead('h1'), 'h1', [VERSION_FILES.headJson, VERSION_FILES.headWeights]);
    expect(read.manifest.training.mode).toBe('head');
    expect(modeOf(read.manifest)).toBe('head');
    const decoded = decodeVersion(read, { where: where('h1') });
    expect(decoded.mode).toBe('head');
    const [stored, original] = [(await decoded.load()).head, await loadHead(head.head)];
    const rows = data.features.subarray(0, 4 * data.dim);
    expect(Array.from(stored.predict(rows, 4))).toEqual(Array.from(original.predict(rows, 4)));
    stored.dispose();
    original.dispose();
  });

  it('writes a fine-tuned version on its trunk that reads back as the top it was made from', async () => {
    const read = await roundTrip(encodeTop('f1'), 'f1', [VERSION_FILES.topJson, VERSION_FILES.topWeights]);
    expect(read.manifest.backbone.id).toBe(tuned.trunk.manifest.id);
    expect(read.manifest.backbone.featureDim).toBe(tuned.trunk.featureDim);
    expect(read.manifest.training).toEqual({ mode: 'finetune', bestEpoch: tuned.result.bestEpoch });
    expect(modeOf(read.manifest)).toBe('finetune');
    const decoded = decodeVersion(read, { where: where('f1') });
    expect(decoded.mode).toBe('finetune');
    const { head: stored } = await decoded.load();
    const original = loadTop(tuned.result.top);
    const rows = new Float32Array(2 * original.inputDim).map((_, i) => (i % 7) / 7);
    expect(Array.from(stored.predict(rows, 2))).toEqual(Array.from(original.predict(rows, 2)));
    stored.dispose();
    original.dispose();
  });

  it('refuses a fine-tuned version whose top.bin differs from what its top.json says', () => {
    const encoded = encodeTop('f2');
    const weights = new Uint8Array(encoded.files[VERSION_FILES.topWeights] as Uint8Array);
    weights[0] = weights[0]! ^ 0xff;
    const files = new Map<string, Uint8Array>([
      [VERSION_FILES.topJson, new TextEncoder().encode(encoded.files[VERSION_FILES.topJson] as string)],
      [VERSION_FILES.topWeights, weights],
    ]);
    const manifest = { ...encoded.manifest, head: { ...encoded.manifest.head, files: {} } };
    expect(() => decodeVersion({ manifest, files }, { where: where('f2') })).toThrow(InvalidVersionError);
    expect(() => decodeVersion({ manifest, files }, { where: where('f2') })).toThrow(
      /fine-tuned top of version f2 of 'closet' is invalid: top\.bin has sha256/,
    );
  });

  it('refuses a fine-tuned version whose top predicts other labels than its manifest lists', () => {
    const encoded = encodeTop('f3');
    const json = encoded.files[VERSION_FILES.topJson] as string;
    const files = new Map<string, Uint8Array>([
      [VERSION_FILES.topJson, new TextEncoder().encode(json)],
      [VERSION_FILES.topWeights, encoded.files[VERSION_FILES.topWeights] as Uint8Array],
    ]);
    const labels = [...encoded.manifest.labels].reverse();
    const manifest = { ...encoded.manifest, labels, head: { ...encoded.manifest.head, files: {} } };
    expect(() => decodeVersion({ manifest, files }, { where: where('f3') })).toThrow(
      /but the manifest lists/,
    );
  });

  it('refuses a stored head version whose head.bin was swapped after it was written', async () => {
    const encoded = encodeHead('h2');
    await writeVersion(store, encoded.manifest, encoded.files);
    await store.put(layout.versionFile('closet', 'h2', VERSION_FILES.headWeights), new Uint8Array(16));
    await expect(readVersion(store, 'closet', 'h2')).rejects.toThrow(/head\.bin has sha256/);
  });

  it('refuses a head version without its weights', () => {
    const encoded = encodeHead('h3');
    const files = new Map<string, Uint8Array>([
      [VERSION_FILES.headJson, new TextEncoder().encode(encoded.files[VERSION_FILES.headJson] as string)],
    ]);
    const manifest = { ...encoded.manifest, head: { ...encoded.manifest.head, files: {} } };
    expect(() => decodeVersion({ manifest, files }, { where: where('h3') })).toThrow(
      "version h3 of 'closet' has no head.json and head.bin",
    );
  });

  it('reads an evaluation.json written before per-photo evaluation, and lists the photos of a confusion cell', () => {
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const old = decodeEvaluation(bytes({ validation: { n: 3 }, examples: 12 }), where('old'));
    expect(old.validationExamples).toBeUndefined();
    expect(examplesInCell(old, { label: 'hat', predicted: 'shoes' })).toEqual([]);
    const photo = (key: string, label: string, predicted: string) => ({
      key,
      sha256: 'a'.repeat(64),
      label,
      predicted,
      score: 0.9,
      outlierScore: null,
    });
    const now = decodeEvaluation(
      bytes({
        validation: { n: 2 },
        validationExamples: [photo('k1', 'hat', 'shoes'), photo('k2', 'hat', 'hat')],
      }),
      where('new'),
    );
    expect(examplesInCell(now, { label: 'hat', predicted: 'shoes' }).map((e) => e.key)).toEqual(['k1']);
    expect(() => decodeEvaluation(bytes({ validationExamples: [{ key: 1 }] }), where('bad'))).toThrow(
      InvalidVersionError,
    );
  });

  it('stores label suspects with a version, and leaves them and the evaluation out of what serving reads', async () => {
    const suspects = {
      schemaVersion: 1 as const,
      folds: 5,
      photos: 24,
      suspects: [
        {
          key: 'uploads/closet/hat/a.jpg',
          sha256: 'c'.repeat(64),
          label: 'hat',
          suspectedLabel: 'shoes',
          confidence: 0.9,
          labelScore: 0.05,
        },
      ],
    };
    const encoded = withSuspects(encodeHead('s1'), suspects);
    const read = await roundTrip(encoded, 's1', [
      VERSION_FILES.headJson,
      VERSION_FILES.headWeights,
      VERSION_FILES.suspects,
    ]);
    expect(decodeSuspects(read.files.get(VERSION_FILES.suspects)!, where('s1'))).toEqual(suspects);
    const one = await readVersionFile(store, 'closet', 's1', VERSION_FILES.suspects);
    expect(decodeSuspects(one!.body, where('s1'))).toEqual(suspects);
    await roundTrip(encodeHead('s2'), 's2', [VERSION_FILES.headJson, VERSION_FILES.headWeights]);
    expect(await readVersionFile(store, 'closet', 's2', VERSION_FILES.suspects)).toBeUndefined();
    const serving = await readVersion(store, 'closet', 's1', { forServing: true });
    expect([...serving.files.keys()].sort()).toEqual(
      [VERSION_FILES.headJson, VERSION_FILES.headWeights].sort(),
    );
    expect(decodeVersion(serving, { where: where('s1') }).mode).toBe('head');
    await store.put(layout.versionFile('closet', 's1', VERSION_FILES.suspects), '{}');
    await expect(readVersionFile(store, 'closet', 's1', VERSION_FILES.suspects)).rejects.toThrow(
      /suspects\.json has sha256/,
    );
  });

  it('says which mode a manifest is from its format alone', () => {
    expect(modeOf(encodeHead('h4').manifest)).toBe('head');
    expect(modeOf(encodeTop('f4').manifest)).toBe('finetune');
  });
});
