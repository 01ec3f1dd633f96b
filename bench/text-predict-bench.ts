import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { createApp, localStoreRoot } from '../shared/http/index.js';
import {
  createProjectTrainer,
  textTrainingBackbone,
  trainingBackbone,
} from '../shared/pipeline/train-project.js';
import { createFsStore } from '../shared/store/index.js';
import {
  buildTextBackbone,
  DEFAULT_TEXT_VOCABULARY,
  WINK_SOURCE_ID,
  winkVectors,
} from '../shared/text/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { buildTestBackbone } from '../test/support/publish-test-model.js';
import { uploadTextRows } from '../test/support/text-project.js';
import { readBanking77 } from './banking77-rows.js';
import { emit, percentile } from './bench-util.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const PROJECT = 'banking77';
const SINGLE_RUNS = flag('--single-runs', 1000);
const BATCH_RUNS = flag('--batch-runs', 50);

async function main(): Promise<void> {
  await initTf({ backend: 'wasm' });
  const train = readBanking77('train.csv').slice(0, flag('--texts', Number.POSITIVE_INFINITY));
  const test = readBanking77('test.csv');
  const home = mkdtempSync(join(tmpdir(), 'headstart-text-predict-bench-'));
  try {
    const store = createFsStore({ root: localStoreRoot(home) });
    const image = await buildTestBackbone();
    const { pkg, backbone: text } = await buildTextBackbone({
      source: winkVectors(DEFAULT_TEXT_VOCABULARY),
      sourceId: WINK_SOURCE_ID,
      dim: 100,
    });
    const started = performance.now();
    // One banking77 intent, 'reverted_card_payment?', is not a valid label: it is uploaded without the '?'.
    const rows = train.map((r) => [r.text, r.label.replace(/[^\p{L}\p{N} _\-.()&+']/gu, '')] as const);
    const index = await uploadTextRows(store, PROJECT, {
      backbone: image.backbone,
      text: { pkg, backbone: text },
      rows,
    });
    emit('text.upload_extract_seconds', (performance.now() - started) / 1000, 's', {
      texts: train.length,
      note: 'put + extract, one at a time, file-system store',
    });

    const trainer = createProjectTrainer({
      store,
      index,
      backbone: trainingBackbone(image.backbone),
      textBackbone: async () => textTrainingBackbone(text.manifest),
    });
    const trainStarted = performance.now();
    const outcome = await trainer.run(PROJECT, { ignoreQuietWindow: true });
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    if (outcome.status !== 'promoted')
      throw new Error(`the text project was not promoted: ${outcome.status}`);
    emit('text.pipeline_train_seconds', trainSeconds, 's', {
      texts: train.length,
      note: 'ProjectTrainer.run: features read, head search and refit, label suspects, version written and promoted',
    });

    const app = createApp({ store, backbone: async () => image.backbone, config: { requireKeys: false } });
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/projects/${PROJECT}/predict`;
    try {
      await measure(
        url,
        test.map((r) => r.text),
      );
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

async function post(url: string, init: RequestInit): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', ...init });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`predict answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

async function measure(url: string, texts: string[]): Promise<void> {
  const single = (t: string) =>
    post(url, { body: t, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  for (let i = 0; i < 50; i++) await single(texts[i]!);
  const lat: number[] = [];
  for (let i = 0; i < SINGLE_RUNS; i++) {
    const t = performance.now();
    await single(texts[i % texts.length]!);
    lat.push(performance.now() - t);
  }
  emit('text.predict_http_p50', percentile(lat, 50), 'ms', {
    p95: Number(percentile(lat, 95).toFixed(3)),
    runs: SINGLE_RUNS,
    note: 'one text/plain text per request, server and client in one process',
  });
  const perText: number[] = [];
  for (let i = 0; i < BATCH_RUNS + 5; i++) {
    const batch = Array.from({ length: 100 }, (_, j) => texts[(i * 100 + j) % texts.length]!);
    const t = performance.now();
    const body = (await post(url, {
      body: JSON.stringify({ texts: batch }),
      headers: { 'content-type': 'application/json' },
    })) as { results: unknown[] };
    if (body.results.length !== batch.length) throw new Error('a batch answered fewer results');
    if (i >= 5) perText.push((performance.now() - t) / batch.length);
  }
  emit('text.predict_http_batch_per_text_p50', percentile(perText, 50), 'ms', {
    batch: 100,
    runs: BATCH_RUNS,
    note: '{"texts": [...]} of 100, request time over 100',
  });
}

await main();
