import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessPredictor } from '../../functions/cli/ui-wiring.js';
import { listKeys } from '../../shared/auth/index.js';
import { type Backbone, loadBackbone } from '../../shared/backbone/index.js';
import { createEdgeApp } from '../../shared/http/index.js';
import {
  decodeEvaluation,
  examplesInCell,
  readPointer,
  readVersion,
  readVersionFile,
  VERSION_FILES,
  validationMetricsOf,
} from '../../shared/models/index.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { createUiApp, type UiPredictor } from '../../shared/ui/index.js';
import { browserSkipReason, launchChromium, serveOnLoopback } from '../support/browser.js';
import { clothingMini, clothingMiniDir } from '../support/fixtures.js';
import { inProcessPipeline } from '../support/in-process-pipeline.js';
import { testBackbone } from '../support/test-backbone.js';
import { intentRows, publishTextModel, tinyTextBackbone } from '../support/text-project.js';

// The dashboard in a real headless Chromium, over a real store, extractor and trainer wired as the local stack
// wires them (the training runs in this process when the page asks for one). One browser for the whole file.

const PROJECT = 'closet';
const XSS = '<script>alert(1)</script>';

let backbone: Backbone;
let store: ObjectStore;
let browser: Browser;
let page: Page;
let server: { url: string; close(): Promise<void> };
let training: Promise<unknown> = Promise.resolve();
let predict: UiPredictor;
const dialogs: string[] = [];

function pipeline() {
  return inProcessPipeline({ store, backbone, trainOptions: { headTypes: ['softmax'], softmaxL2: [1e-2] } });
}

/** Two label folders of clothing-mini's training split: the least a training takes, to keep this file fast. */
const LABELS = ['hat', 'shoes'];
function uploadFolder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'headstart-ui-')), 'photos');
  for (const l of LABELS) cpSync(join(clothingMiniDir, 'train', l), join(dir, l), { recursive: true });
  return dir;
}

describe.skipIf(!!browserSkipReason)('the dashboard in a browser', () => {
  beforeAll(async () => {
    await initTf();
    backbone = await loadBackbone(await testBackbone());
    store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-ui-store-')) });
    const { reconciler, trainer } = pipeline();
    predict = inProcessPredictor({ store, backbone: async () => backbone });
    const ui = createUiApp({
      store,
      // Try it as the dashboard command wires it: an edge app of its own, no key, no review copies.
      predict,
      // Locally the stack notices the request; here the test runs the extraction and training the request asks for.
      trigger: {
        async notify(project) {
          training = (async () => {
            await reconciler.scan();
            return trainer.run(project, { ignoreQuietWindow: true });
          })();
        },
      },
    });
    server = await serveOnLoopback(ui.fetch);
    browser = await launchChromium();
    page = await browser.newPage({ permissions: ['camera'] });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('uploads a folder of label folders from the file input, showing progress and the count', async () => {
    await page.goto(`${server.url}/ui/p/${PROJECT}/data`);
    await page.setInputFiles('#folder-input', uploadFolder());
    await page.waitForSelector('#upload-status[data-done="1"]');
    const expected = clothingMini('train').filter((p) => LABELS.includes(p.label)).length;
    expect(await page.textContent('#upload-status')).toContain(
      `uploaded ${expected}, already there 0, refused 0`,
    );
    expect(await page.getAttribute('#upload-progress', 'value')).toBe(String(expected));
    let uploads = 0;
    for await (const _ of store.list(`uploads/${PROJECT}/`)) uploads++;
    expect(uploads).toBe(expected);
  });

  it('starts a training from the Model page and shows its result when it is done', async () => {
    await page.goto(`${server.url}/ui/p/${PROJECT}/model`);
    // The answer to the request is a redirect back to the page, which reloads itself while the training runs.
    await Promise.all([page.waitForURL(/notice=/, { waitUntil: 'commit' }), page.click('#train-now')]);
    await training;
    const pointer = await readPointer(store, PROJECT);
    expect(pointer).toBeDefined();
    await page.waitForSelector('#last-outcome', { timeout: 20_000 });
    expect(await page.textContent('#last-outcome')).toContain(`promoted ${pointer!.pointer.version}`);
    expect(await page.textContent('#versions tr.current')).toContain(pointer!.pointer.version);
  });

  it('opens a confusion cell showing exactly the validation photos the evaluation lists in it', async () => {
    const version = (await readPointer(store, PROJECT))!.pointer.version;
    const read = await readVersionFile(store, PROJECT, version, VERSION_FILES.evaluation);
    const evaluation = decodeEvaluation(read!.body, version);
    const m = validationMetricsOf(evaluation)!;
    const labels = m.perLabel.map((l) => l.label);
    // A mistake if the version made one, else the fullest cell.
    let best = { t: 0, p: 0, n: -1, miss: false };
    for (const [t, row] of m.confusion.entries()) {
      for (const [p, n] of row.entries()) {
        const miss = t !== p && n > 0;
        if ((miss && !best.miss) || (miss === best.miss && n > best.n)) best = { t, p, n, miss };
      }
    }
    const cell = { label: labels[best.t]!, predicted: labels[best.p]! };
    await page.goto(`${server.url}/ui/p/${PROJECT}/mistakes`);
    await page.click(`td.cell[data-label="${cell.label}"][data-predicted="${cell.predicted}"] a`);
    await page.waitForSelector('#cell');
    const shown = await page.$$eval('#cell figure.example', (els) =>
      els.map((e) => e.getAttribute('data-key')),
    );
    const listed = examplesInCell(evaluation, cell).map((e) => e.key);
    expect(listed.length).toBe(best.n);
    expect(shown.sort()).toEqual(listed.sort());
    // Lazily loaded: scrolled into view, each thumbnail arrives at its size.
    await page.$eval('#cell', (e) => e.scrollIntoView());
    await page.waitForFunction("[...document.querySelectorAll('#cell img.thumb')].every((i) => i.complete)");
    const loaded = await page.$$eval('#cell img.thumb', (imgs) =>
      imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth),
    );
    expect(loaded.every((w) => w === 112)).toBe(true);
  });

  it('labels a review item with one key, and the item becomes an upload of that label', async () => {
    await page.goto(`${server.url}/ui/p/${PROJECT}/review`);
    await page.fill('input[name="below"]', '1');
    await page.click('button[name="enabled"][value="1"]');
    await page.waitForSelector('.notice.ok');
    // A prediction through the real API, which keeps the photo for review now that the project asks it to.
    const api = createEdgeApp({ store, backbone: async () => backbone, config: { requireKeys: false } });
    const photo = clothingMini('eval').find((p) => p.label === 'hat')!;
    const res = await api.app.request(`/v1/projects/${PROJECT}/predict`, {
      method: 'POST',
      body: photo.bytes as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(res.status).toBe(200);
    await api.reviews.settle();
    await page.reload();
    const id = await page.getAttribute('#review-items .queue-item', 'data-id');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const current = (await readPointer(store, PROJECT))!.pointer.version;
    const first = (await readVersion(store, PROJECT, current)).manifest.labels[0]!;
    await page.focus('#review-items .queue-item');
    await page.keyboard.press('1');
    await page.waitForSelector('#review-items .queue-item', { state: 'detached' });
    expect(await page.textContent('#toast')).toContain(`uploads/${PROJECT}/${first}/review-${id}.jpg`);
    expect(await store.head(`uploads/${PROJECT}/${first}/review-${id}.jpg`)).toBeDefined();
  });

  it('makes another version current after asking for confirmation', async () => {
    // A second training (the review upload changed the dataset): promoted or held back, there are two versions.
    await page.goto(`${server.url}/ui/p/${PROJECT}/model`);
    await Promise.all([page.waitForURL(/notice=/, { waitUntil: 'commit' }), page.click('#train-now')]);
    await training;
    const current = (await readPointer(store, PROJECT))!.pointer.version;
    await page.goto(`${server.url}/ui/p/${PROJECT}/model`);
    const other = await page.getAttribute('#versions tbody tr:not(.current)', 'data-version');
    expect(other).toMatch(/^v\d/);
    await page.click(`#versions tr[data-version="${other}"] a.rollback`);
    expect(await page.textContent('#confirm-text')).toContain(other!);
    // Nothing changes until it is confirmed.
    expect((await readPointer(store, PROJECT))!.pointer.version).toBe(current);
    await page.click('#confirm-rollback');
    await page.waitForSelector('.notice.ok');
    expect(await page.textContent('.notice.ok')).toContain(`now serves ${other}`);
    expect((await readPointer(store, PROJECT))!.pointer.version).toBe(other);
    expect(await page.textContent('#versions tr.current')).toContain(other!);
  });

  it('creates a key shown once, lists it, and revokes it', async () => {
    await page.goto(`${server.url}/ui/p/${PROJECT}/keys`);
    await page.fill('input[name="name"]', 'phone app');
    await page.click('#create-key');
    const key = (await page.textContent('#new-key-value'))!;
    expect(key).toMatch(/^hs_[0-9a-f]{16}_/);
    const [info] = await listKeys(store, PROJECT);
    expect(key).toContain(info!.keyId);
    await page.goto(`${server.url}/ui/p/${PROJECT}/keys`);
    expect(await page.$('#new-key-value')).toBeNull();
    expect(await page.textContent(`tr[data-key-id="${info!.keyId}"]`)).toContain('phone app');
    await page.click(`tr[data-key-id="${info!.keyId}"] button`);
    await page.waitForSelector('#no-keys');
    expect(await listKeys(store, PROJECT)).toEqual([]);
  });

  it('shows a label and a file name made of markup as text, running nothing', async () => {
    // A label the upload rules refuse still reaches the page through the quarantine record of the upload.
    await store.put(`uploads/${PROJECT}/${XSS}/photo.jpg`, clothingMini('eval')[0]!.bytes);
    await pipeline().reconciler.scan();
    await page.goto(`${server.url}/ui/p/${PROJECT}/data`);
    expect(await page.textContent('#quarantine')).toContain(`uploads/${PROJECT}/${XSS}/photo.jpg`);
    const res = await page.goto(`${server.url}/ui/p/${PROJECT}/review/${'0'.repeat(64)}/label`);
    expect(res?.status()).toBe(404);
    // Labelled from a form: the refusal names the label, as text.
    await page.goto(`${server.url}/ui/p/${PROJECT}/data`);
    await page.check('input[name="key"] >> nth=0');
    await page.fill('input[name="label"]', XSS);
    await page.click('button[value="relabel"]');
    await page.waitForSelector('.notice');
    expect(await page.textContent('.notice')).toContain(XSS);
    expect(await page.$$eval('script', (s) => s.map((x) => x.getAttribute('src')))).toEqual([
      '/ui/assets/dashboard.js',
    ]);
    expect(dialogs).toEqual([]);
  });

  it('classifies a webcam frame on the Try it page, answering as the API does', async () => {
    await page.goto(`${server.url}/ui/p/${PROJECT}/try`);
    await page.click('#webcam-start');
    await page.waitForSelector('#webcam-capture', { state: 'visible' });
    await page.waitForSelector('#webcam-video[data-ready="1"]');
    await page.click('#webcam-capture');
    await page.waitForSelector('#try-result[data-done="1"]');
    const current = (await readPointer(store, PROJECT))!.pointer.version;
    const { manifest } = await readVersion(store, PROJECT, current);
    const shown = await page.$$eval('#predictions li', (lis) => lis.map((l) => l.textContent?.split(' ')[0]));
    expect(shown.sort()).toEqual([...manifest.labels].sort());
    expect(await page.textContent('#try-result')).toContain(`version ${current}`);
  });

  it("shows a text project's texts as text, and classifies a typed text on Try it as the API does", async () => {
    await publishTextModel(store, 'intents', { backbone, text: await tinyTextBackbone() });
    await page.goto(`${server.url}/ui/p/intents/data`);
    // The script marks each text it has filled in (a string predicate would need eval, which the page's CSP forbids).
    await page.waitForSelector('[data-text-src]:not([data-loaded])', { state: 'detached' });
    const shown = await page.$$eval('blockquote.text-sample', (els) => els.map((e) => e.textContent));
    const texts = intentRows().map(([t]) => t);
    expect(shown.length).toBeGreaterThan(0);
    for (const t of shown) expect(texts).toContain(t);
    expect(await page.$$('img.thumb')).toHaveLength(0);

    await page.goto(`${server.url}/ui/p/intents/try`);
    await page.fill('#try-text', 'I lost my card');
    await page.click('#try-text-form button');
    await page.waitForSelector('#try-result[data-done="1"]');
    const res = await predict({
      project: 'intents',
      body: new TextEncoder().encode('I lost my card'),
      contentType: 'text/plain',
    });
    const api = (await res.json()) as { predictions: { label: string; score: number }[] };
    const listed = await page.$$eval('#predictions li', (lis) => lis.map((l) => l.textContent));
    expect(listed).toEqual(api.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`));
  });
});
