// npm run bench:extract: uploads through the real precompute handler and stores, against the bare backbone.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createPrecomputeHandler } from '../functions/precompute/precompute-handler.js';
import { loadBackbone } from '../shared/backbone/index.js';
import { createDatasetIndex } from '../shared/dataset/dataset-index.js';
import { decodeImage } from '../shared/image/index.js';
import { createUploadExtractor, viewRequest } from '../shared/pipeline/extract-uploads.js';
import { projectSettingsSchema } from '../shared/pipeline/project-settings.js';
import { createRetrainRequester } from '../shared/pipeline/retrain-requests.js';
import { createFsStore, createS3Store, type ObjectStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { clothingMini } from '../test/support/fixtures.js';
import { lambdaContext, s3EventRecord, sqsEvent } from '../test/support/s3-events.js';
import { testBackbone } from '../test/support/test-backbone.js';
import { clothingSmallDir, emit, listSplit, readBytes } from './bench-util.js';

const N = 160;
const BATCH = 10; // SQS's default batch size for a Lambda event source

async function startMoto(): Promise<{ endpoint: string; stop: () => void } | undefined> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const failed = await new Promise<boolean>((resolve) => {
    child.on('error', () => resolve(true));
    const deadline = Date.now() + 15000;
    const poll = async () => {
      try {
        await fetch(`http://127.0.0.1:${port}/moto-api/`);
        resolve(false);
      } catch {
        if (Date.now() > deadline) resolve(true);
        else setTimeout(poll, 150);
      }
    };
    void poll();
  });
  if (failed) return undefined;
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

async function main(): Promise<void> {
  await initTf();
  const backbone = await loadBackbone(await testBackbone());
  let files = listSplit(clothingSmallDir, 'train')
    .filter((_, i) => i % 19 === 0)
    .slice(0, N)
    .map((f) => ({ label: f.label, bytes: readBytes(f.path), name: f.path.split('/').pop()! }));
  if (files.length === 0)
    files = clothingMini('train').map((f) => ({ ...f, name: f.path.split('/').pop()! }));

  // Bare: decode nothing, just the backbone on already-decoded pixels, in batches like the handler's, once per
  // view a project with default settings caches (the photo and its mirror), so the ratio is the handler's overhead.
  const { views } = viewRequest(projectSettingsSchema.parse({}));
  const pixels = (
    await Promise.all(
      files.map((f) =>
        Promise.all(
          views.map(async (view) => (await decodeImage(f.bytes, { size: backbone.inputSize, view })).data),
        ),
      ),
    )
  ).flat();
  await backbone.extract(pixels.slice(0, BATCH));
  let t = performance.now();
  for (let i = 0; i < pixels.length; i += BATCH) await backbone.extract(pixels.slice(i, i + BATCH));
  const bareMs = (performance.now() - t) / files.length;
  emit('extract_bare_backbone_ms_per_image', bareMs, 'ms', { images: files.length, views });

  const run = async (name: string, store: ObjectStore) => {
    const index = createDatasetIndex(store);
    const retrain = createRetrainRequester(store, { notify: async () => {} });
    const extractor = createUploadExtractor({
      store,
      backbone,
      index,
      requestRetrain: (p) => retrain.request(p),
    });
    const handler = createPrecomputeHandler({
      extractor: async () => extractor,
      retrain,
      logger: new Logger({ serviceName: 'bench', logLevel: 'SILENT' }),
    });
    const keys = files.map((f, i) => `uploads/bench/${f.label}/${i}-${f.name}`);
    await Promise.all(keys.map((k, i) => store.put(k, files[i]!.bytes)));
    t = performance.now();
    for (let i = 0; i < keys.length; i += BATCH) {
      const res = await handler(
        sqsEvent(keys.slice(i, i + BATCH).map((k) => s3EventRecord('created', k))),
        lambdaContext,
      );
      if (res.batchItemFailures.length) throw new Error(`${name}: ${res.batchItemFailures.length} failures`);
    }
    const perImage = (performance.now() - t) / keys.length;
    emit(`extract_images_per_s_${name}`, 1000 / perImage, 'images/s', { images: keys.length });
    emit(`extract_overhead_ratio_${name}`, perImage / bareMs, 'ratio');
    // Duplicates: the same events again cost no backbone time at all.
    t = performance.now();
    await handler(sqsEvent(keys.slice(0, BATCH).map((k) => s3EventRecord('created', k))), lambdaContext);
    emit(`extract_reupload_ms_per_image_${name}`, (performance.now() - t) / BATCH, 'ms');
    return perImage;
  };

  const local = await run(
    'local',
    createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-extract-bench-')) }),
  );
  emit('extract_images_per_s', 1000 / local, 'images/s', { store: 'local file system' });
  emit('extract_overhead_ratio', local / bareMs, 'ratio', { store: 'local file system' });

  const moto = await startMoto();
  if (!moto) {
    emit('extract_images_per_s_moto', null, 'images/s', { note: 'moto_server not available' });
  } else {
    try {
      const client = new S3Client({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      });
      await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
      await run('moto', createS3Store({ bucket: 'bench', client }));
    } finally {
      moto.stop();
    }
  }
  emit('extract_peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB');
}

await main();
