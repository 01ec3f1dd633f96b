import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../shared/http/index.js';
import { edgeFixture } from '../../test/support/edge-test-support.js';
import { fixturesDir } from '../../test/support/fixtures.js';
import { runCli } from '../../test/support/run-cli.js';
import { publishTextModel, tinyTextBackbone } from '../../test/support/text-project.js';

let api: string;
let close: () => void = () => {};
const home = mkdtempSync(join(tmpdir(), 'hs-text-cli-'));
const INTENTS = join(fixturesDir, 'text', 'intents.csv');

beforeAll(async () => {
  const fx = await edgeFixture();
  const store = await fx.newStore();
  await publishTextModel(store, 'intents', { backbone: fx.backbone, text: await tinyTextBackbone() });
  const app = createApp({ store, backbone: async () => fx.backbone, config: { requireKeys: false } });
  api = await new Promise<string>((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
    close = () => {
      server.close();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    };
  });
}, 120_000);
afterAll(() => close());

describe('headstart predict and eval on a text project', () => {
  it('prints the predictions of each --text, best first, and the same as JSON', async () => {
    const r = await runCli(home, [
      'predict',
      '--project',
      'intents',
      '--text',
      'I lost my card',
      '--text',
      'euro rate?',
      '--api',
      api,
    ]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^"I lost my card": [a-z_]+ \d\.\d{3}, [a-z_]+ \d\.\d{3}, [a-z_]+ \d\.\d{3}$/);
    expect(lines[1]).toMatch(/^"euro rate\?": /);
    const j = await runCli(home, [
      'predict',
      '--project',
      'intents',
      '--text',
      'I lost my card',
      '--api',
      api,
      '--json',
    ]);
    const res = JSON.parse(j.out) as {
      text: string;
      predictions: { label: string }[];
      unknown: boolean | null;
    }[];
    expect(res[0]!.text).toBe('I lost my card');
    expect(res[0]!.predictions.map((p) => p.label).sort()).toEqual([
      'card_arrival',
      'exchange_rate',
      'lost_card',
    ]);
    // The text version has an outlier detector: the JSON says what it made of the text.
    expect(typeof res[0]!.unknown).toBe('boolean');
  });

  it('refuses --text mixed with image files', async () => {
    const r = await runCli(home, ['predict', '--project', 'intents', '--text', 'hi', 'a.jpg', '--api', api]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/image files or --text, not both/);
  });

  it('scores the model on a CSV of labelled texts: accuracy per label and as JSON', async () => {
    const r = await runCli(home, ['eval', '--project', 'intents', INTENTS, '--api', api, '--json']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as {
      n: number;
      accuracy: number;
      perLabel: { label: string; support: number }[];
      examples: { file: string; label: string; predicted: string }[];
    };
    expect(report.n).toBe(36);
    const right = report.examples.filter((e) => e.label === e.predicted).length;
    expect(report.accuracy).toBeCloseTo(right / 36, 6);
    // Trained on these very rows: most come back right.
    expect(report.accuracy).toBeGreaterThan(0.7);
    expect(report.examples[0]!.file).toBe('intents.csv:2');
    expect(report.perLabel.map((p) => p.support)).toEqual([12, 12, 12]);
    const text = await runCli(home, ['eval', '--project', 'intents', INTENTS, '--api', api]);
    expect(text.out.split('\n')[0]).toMatch(
      /^intents v\S+: accuracy \d\.\d{3}, macro-F1 \d\.\d{3} on 36 texts$/,
    );
  });

  it('reads a JSONL table with named columns, skipping unknown labels and listing empty rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-text-eval-'));
    const path = join(dir, 'held-out.jsonl');
    writeFileSync(
      path,
      [
        { q: 'my card never arrived', y: 'card_arrival' },
        { q: 'what is the dollar rate', y: 'exchange_rate' },
        { q: 'how do I close my account', y: 'close_account' },
        { q: '  ', y: 'lost_card' },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n'),
    );
    const r = await runCli(home, [
      'eval',
      '--project',
      'intents',
      path,
      '--text-column',
      'q',
      '--label-column',
      'y',
      '--api',
      api,
      '--json',
    ]);
    const report = JSON.parse(r.out) as {
      n: number;
      skipped: { file: string; reason: string }[];
      failed: { file: string; code: string }[];
    };
    expect(report.n).toBe(2);
    expect(report.skipped).toEqual([
      { file: 'held-out.jsonl:3', reason: "label 'close_account' is not in the model" },
    ]);
    expect(report.failed).toMatchObject([{ file: 'held-out.jsonl:4', code: 'empty_text' }]);
  });
});
