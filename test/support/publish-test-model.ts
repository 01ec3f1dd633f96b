import { createHash } from 'node:crypto';
import {
  type Backbone,
  type BackbonePackage,
  loadBackbone,
  saveBackbone,
  setDefaultBackbone,
} from '../../shared/backbone/index.js';
import { decodeImage } from '../../shared/image/index.js';
import { layout } from '../../shared/layout/index.js';
import {
  flipPointer,
  HEAD_BIN,
  HEAD_JSON,
  type ModelManifest,
  readPointer,
  writeVersion,
} from '../../shared/models/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { type SerializedHead, type TrainResult, trainHead } from '../../shared/train/index.js';
import { clothingMini } from './fixtures.js';
import { testBackbone } from './test-backbone.js';

export interface TestBackbone {
  pkg: BackbonePackage;
  backbone: Backbone;
}

/** The default edge backbone (built once per machine by test-backbone.ts), loaded into the current tfjs backend. */
export async function buildTestBackbone(): Promise<TestBackbone> {
  const pkg = await testBackbone();
  return { pkg, backbone: await loadBackbone(pkg) };
}

/** Publishes the backbone into the store and makes it the default, as the deploy step does. */
export async function installBackbone(store: ObjectStore, pkg: BackbonePackage): Promise<void> {
  await saveBackbone(store, pkg);
  await setDefaultBackbone(store, pkg.manifest.id);
}

export interface TrainedTestHead {
  result: TrainResult;
  backbone: BackbonePackage['manifest'];
}

/** The clothing-mini training photos as features of `backbone`, in the form head training and fine-tuning take. */
export interface TrainingFeatures {
  /** n * dim values, row-major. */
  features: Float32Array;
  dim: number;
  labels: number[];
  labelNames: string[];
  /** sha256 of each photo. */
  ids: string[];
}

/** Decodes the clothing-mini training photos as `backbone` expects (size, resize policy) and extracts them. */
export async function extractTrainingFeatures(backbone: Backbone): Promise<TrainingFeatures> {
  const train = clothingMini('train');
  const labelNames = [...new Set(train.map((t) => t.label))];
  const size = backbone.inputSize;
  const policy = backbone.manifest.preprocessing.resize;
  const pixels = await Promise.all(
    train.map(async (t) => (await decodeImage(t.bytes, { size, policy })).data),
  );
  const rows = await backbone.extract(pixels);
  const dim = backbone.featureDim;
  const features = new Float32Array(rows.length * dim);
  for (const [i, r] of rows.entries()) features.set(r, i * dim);
  return {
    features,
    dim,
    labels: train.map((t) => labelNames.indexOf(t.label)),
    labelNames,
    ids: train.map((t) => createHash('sha256').update(t.bytes).digest('hex')),
  };
}

/** Trains a head on the clothing-mini training photos with the given backbone (softmax only, to stay fast). */
export async function trainTestHead(backbone: Backbone): Promise<TrainedTestHead> {
  const result = await trainHead(await extractTrainingFeatures(backbone), {
    headTypes: ['softmax'],
    softmaxL2: [1e-3, 1e-2],
  });
  return { result, backbone: backbone.manifest };
}

/** A manifest as written: `writeVersion` fills in `head.files` from the files' bytes. */
export type UnwrittenManifest = Omit<ModelManifest, 'head'> & { head: Omit<ModelManifest['head'], 'files'> };

export interface PublishOptions<File extends string = typeof HEAD_JSON | typeof HEAD_BIN> {
  version: string;
  /** Replace stored files (bytes hashed into the manifest as given). */
  files?: Partial<Record<File, Uint8Array | string>>;
  /** Adjust the manifest before it is written, e.g. to claim another backbone. */
  manifest?: (m: UnwrittenManifest) => void;
  /** Write the version but leave the pointer alone. */
  flip?: boolean;
  now?: Date;
}

export function headFiles(head: SerializedHead): Record<string, Uint8Array | string> {
  return { [HEAD_JSON]: JSON.stringify(head.modelJson), [HEAD_BIN]: head.weightData };
}

/** Writes a version of `project` with `files`, after the options' overrides, and (by default) makes it current. */
export async function publishVersion(
  store: ObjectStore,
  manifest: UnwrittenManifest,
  files: Record<string, Uint8Array | string>,
  options: PublishOptions<string>,
): Promise<{ version: string; manifest: ModelManifest }> {
  options.manifest?.(manifest);
  const all: Record<string, Uint8Array | string> = { ...files };
  for (const [name, body] of Object.entries(options.files ?? {})) if (body !== undefined) all[name] = body;
  const written = await writeVersion(store, manifest, all);
  if (options.flip ?? true) {
    const current = await readPointer(store, manifest.project);
    await flipPointer(
      store,
      manifest.project,
      manifest.version,
      'promoted',
      current?.etag,
      options.now ?? new Date(),
    );
  }
  return { version: manifest.version, manifest: written.manifest };
}

/** Writes a version of `project` with the trained head and (by default) makes it current. */
export async function publishTestModel(
  store: ObjectStore,
  project: string,
  trained: TrainedTestHead,
  options: PublishOptions,
): Promise<{ version: string; manifest: ModelManifest }> {
  const now = options.now ?? new Date();
  const { result, backbone } = trained;
  const manifest: UnwrittenManifest = {
    schemaVersion: 1 as const,
    project,
    version: options.version,
    createdAt: now.toISOString(),
    labels: result.head.labels,
    backbone: {
      id: backbone.id,
      weightsSha256: backbone.weightsSha256,
      inputSize: backbone.inputSize,
      featureDim: backbone.feature.dim,
    },
    head: { format: 'tfjs-layers' as const, type: result.config.headType },
    metrics: { accuracy: result.metrics.accuracy, macroF1: result.metrics.macroF1, n: result.metrics.n },
    datasetSnapshot: result.datasetSnapshot,
    training: { config: result.config },
  };
  return publishVersion(store, manifest, headFiles(result.head), { ...options, now });
}

/** Overwrites one file of a stored version in place, as a bad copy or a tampering would. */
export async function overwriteVersionFile(
  store: ObjectStore,
  project: string,
  version: string,
  file: string,
  body: Uint8Array | string,
): Promise<void> {
  await store.put(layout.versionFile(project, version, file), body);
}
