// Runs the synthesized bundles, not the sources: the same esbuild output that `cdk synth` packages as Lambda
// code, each started in a fresh Node process with a real-shaped event, against moto_server's S3 and SQS.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { CloudFrontEdgeEvent } from 'hono/lambda-edge';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKey } from '../shared/auth/index.js';
import { decodeFeatures } from '../shared/dataset/feature-file.js';
import { ORIGIN_HEADER_BUCKET, ORIGIN_HEADER_REGION } from '../shared/http/index.js';
import { layout } from '../shared/layout/index.js';
import { readPointer } from '../shared/models/index.js';
import { createS3Store, type ObjectStore } from '../shared/store/index.js';
import { clothingMini } from '../test/support/fixtures.js';
import { rawSqsRecord, s3EventRecord, sqsEvent } from '../test/support/s3-events.js';
import { type BackboneAsset, buildBackboneAsset } from './backbone-asset.js';
import { backboneKeys } from './backbone-deployment.js';
import { type BuiltBundle, buildBundles, bundleSpec, REPO_ROOT } from './bundling.js';

const endpoint = inject('motoEndpoint');
if (!endpoint) console.warn(`[headstart tests] infra bundle tests skipped: ${inject('motoSkipReason')}`);

const DRIVER = join(REPO_ROOT, 'infra', 'invoke-bundle.mjs');
const REGION = 'us-east-1';
const PROJECT = 'clothing';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** What every Lambda process gets from the platform; nothing from this machine's AWS configuration. */
function platformEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmpdir(),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

let work: string;
let calls = 0;

/** Starts a fresh process that imports the bundle and calls its handler once, as Lambda would. */
function invoke<T>(bundle: BuiltBundle, event: unknown, env: Record<string, string>): Promise<T> {
  calls += 1;
  const eventFile = join(work, `${bundle.name}-${calls}-event.json`);
  const resultFile = join(work, `${bundle.name}-${calls}-result.json`);
  writeFileSync(eventFile, JSON.stringify(event));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRIVER, bundle.file, eventFile, resultFile], {
      env: { ...platformEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`${bundle.name} bundle exited with ${code}:\n${output.slice(-4000)}`));
        return;
      }
      resolve(JSON.parse(readFileSync(resultFile, 'utf8')) as T);
    });
  });
}

describe.skipIf(!endpoint)('the built bundles against moto_server', () => {
  const bucket = `headstart-bundles-${process.pid}-${Date.now().toString(36)}`;
  const s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials });
  const sqs = new SQSClient({ region: REGION, endpoint, credentials });
  let store: ObjectStore;
  let bundles: Record<'precompute' | 'train' | 'edge', BuiltBundle>;
  let backbone: BackboneAsset;
  let queueUrl: string;
  const photos = clothingMini('train');

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'headstart-infra-bundles-'));
    mkdirSync(join(work, 'bundles'));
    const built = await buildBundles([bundleSpec('precompute'), bundleSpec('train'), bundleSpec('edge')], {
      outRoot: join(work, 'bundles'),
    });
    bundles = {
      precompute: built.find((b) => b.name === 'precompute')!,
      train: built.find((b) => b.name === 'train')!,
      edge: built.find((b) => b.name === 'edge')!,
    };
    backbone = await buildBackboneAsset({ cacheRoot: join(tmpdir(), 'headstart-backbones') });

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    store = createS3Store({ bucket, endpoint, region: REGION, forcePathStyle: true, credentials });
    // What the deployment's custom resources put in the bucket, from the same asset files.
    for (const file of backbone.files) await store.put(file.key, new Uint8Array(readFileSync(file.path)));
    await store.put(backboneKeys(backbone.id).pointer, JSON.stringify({ id: backbone.id }));
    for (const p of photos) {
      const name = p.path.split('/').pop()!;
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `uploads/${PROJECT}/${p.label}/${name}`,
          Body: p.bytes,
          ContentType: 'image/jpeg',
        }),
      );
    }
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: `headstart-training-${process.pid}` }));
    queueUrl = queue.QueueUrl!;
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const functionEnv = () => ({
    HEADSTART_BUCKET: bucket,
    S3_ENDPOINT: endpoint,
    HEADSTART_TRAINING_QUEUE_URL: queueUrl,
    HEADSTART_RETRAIN_QUIET_SECONDS: '0',
    // In Lambda this is /var/task, the bundle's directory; here the bundle's directory is elsewhere.
    HEADSTART_WASM_DIR: bundles.precompute.dir,
    // The SQS client has no endpoint setting of its own; the SDK's standard variable points it at moto.
    AWS_ENDPOINT_URL_SQS: endpoint,
  });

  let nudge: SQSRecord | undefined;

  it('precompute turns an SQS batch of S3 upload events into features and one training nudge', async () => {
    const records = photos.map((p) =>
      s3EventRecord('created', `uploads/${PROJECT}/${p.label}/${p.path.split('/').pop()}`, undefined, bucket),
    );
    const garbage = rawSqsRecord('this is not an S3 notification');
    const response = await invoke<SQSBatchResponse>(
      bundles.precompute,
      sqsEvent([...records, garbage]),
      functionEnv(),
    );
    // Partial batch response: only the unreadable record is handed back for retry.
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: garbage.messageId }]);

    const features: string[] = [];
    for await (const o of store.list(`features/${backbone.id}/`)) features.push(o.key);
    expect(features.length).toBeGreaterThanOrEqual(photos.length);
    const first = await store.get(features[0]!);
    const decoded = decodeFeatures(first!.body);
    expect(decoded.backboneId).toBe(backbone.id);
    // The deployed trunk is found and its activations cached beside the pooled features, for fine-tuning.
    const spatial = await store.get(`features/${backbone.trunk.id}/${features[0]!.split('/').pop()}`);
    expect(decodeFeatures(spatial!.body).dim).toBe(10 * 10 * 136);

    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages?.map((m) => JSON.parse(m.Body!))).toEqual([{ project: PROJECT }]);
    const m = received.Messages![0]!;
    nudge = { ...rawSqsRecord(m.Body!), messageId: m.MessageId!, receiptHandle: m.ReceiptHandle! };
  });

  it('train turns the nudge from the queue into a model version and makes it current', async () => {
    expect(nudge).toBeDefined();
    const response = await invoke<SQSBatchResponse>(bundles.train, sqsEvent([nudge!]), {
      ...functionEnv(),
      HEADSTART_WASM_DIR: bundles.train.dir,
    });
    expect(response.batchItemFailures).toEqual([]);
    const current = await readPointer(store, PROJECT);
    expect(current?.pointer.project).toBe(PROJECT);
    const manifest = await store.get(layout.versionFile(PROJECT, current!.pointer.version, 'manifest.json'));
    const parsed = JSON.parse(new TextDecoder().decode(manifest!.body)) as {
      labels: string[];
      training: { mode: string };
    };
    expect([...parsed.labels].sort()).toEqual([...new Set(photos.map((p) => p.label))].sort());
    const evaluation = await store.get(
      layout.versionFile(PROJECT, current!.pointer.version, 'evaluation.json'),
    );
    const { mode } = JSON.parse(new TextDecoder().decode(evaluation!.body)) as {
      mode: { chosen: string; fineTuned?: unknown };
    };
    // The bundle fine-tuned from the deployed segment as well as training a head, and chose between them.
    expect(mode.fineTuned).toBeDefined();
    expect(parsed.training.mode).toBe(mode.chosen);
  }, 180_000);

  it('the Lambda@Edge bundle answers a CloudFront origin-request with a base64 JPEG body', async () => {
    const { key } = await createKey(store, PROJECT);
    const photo = clothingMini('eval').find((p) => p.label === 'shoes')!;
    const event = originRequest({
      uri: `/v1/projects/${PROJECT}/predict`,
      querystring: 'topK=2',
      headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${key}` },
      body: photo.bytes,
      originHeaders: { [ORIGIN_HEADER_BUCKET]: bucket, [ORIGIN_HEADER_REGION]: REGION },
    });
    // Lambda@Edge has no environment variables: the bundle reads the bucket from the origin's custom
    // headers. Only the SDK's standard endpoint variable differs from production, to reach moto.
    const response = await invoke<{ status: string; body: string; bodyEncoding?: string }>(
      bundles.edge,
      event,
      { AWS_ENDPOINT_URL_S3: endpoint },
    );
    expect(response.status).toBe('200');
    const text =
      response.bodyEncoding === 'base64' ? Buffer.from(response.body, 'base64').toString() : response.body;
    const body = JSON.parse(text) as { predictions: { label: string; score: number }[] };
    expect(body.predictions).toHaveLength(2);
    expect(body.predictions.map((p) => p.label)).toContain('shoes');
  });
});

function originRequest(options: {
  uri: string;
  querystring: string;
  headers: Record<string, string>;
  body: Uint8Array;
  originHeaders: Record<string, string>;
}): CloudFrontEdgeEvent {
  const cf = (h: Record<string, string>) =>
    Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), [{ key: k, value: v }]]));
  return {
    Records: [
      {
        cf: {
          config: {
            distributionDomainName: 'd111111abcdef8.cloudfront.net',
            distributionId: 'EDFDVBD6EXAMPLE',
            eventType: 'origin-request',
            requestId: 'bundle-test-request',
          },
          request: {
            clientIp: '203.0.113.178',
            headers: cf({ Host: 'd111111abcdef8.cloudfront.net', ...options.headers }),
            method: 'POST',
            querystring: options.querystring,
            uri: options.uri,
            body: {
              action: 'read-only',
              encoding: 'base64',
              inputTruncated: false,
              data: Buffer.from(options.body).toString('base64'),
            },
            origin: {
              custom: {
                customHeaders: cf(options.originHeaders),
                domainName: 'headstart-bucket.s3.us-east-1.amazonaws.com',
                keepaliveTimeout: 5,
                path: '',
                port: 443,
                protocol: 'https',
                readTimeout: 30,
                sslProtocols: ['TLSv1.2'],
              },
            },
          },
        },
      },
    ],
  };
}
