// npm run screenshots: a PNG of each dashboard page (docs/screenshots/, or the directory given), from a real
// project with planted wrong labels, review items, a refused upload and a key. With ../shared/datasets present it
// trains the default backbone on 30 clothing-small photos per label, so the Mistakes page has real mistakes to
// show; without it, the committed clothing-mini fixture on the test backbone (which it classifies perfectly).

import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inProcessPredictor } from '../functions/cli/ui-wiring.js';
import { createKey } from '../shared/auth/index.js';
import { calibrationPhotosDir, loadBackbone, readBackbone } from '../shared/backbone/index.js';
import { createEdgeApp } from '../shared/http/index.js';
import { ensureDefaultBackbone } from '../shared/local/ensure-backbone.js';
import { updateProjectSettings } from '../shared/pipeline/project-settings.js';
import { createFsStore } from '../shared/store/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { createUiApp } from '../shared/ui/index.js';
import { launchChromium, serveOnLoopback } from '../test/support/browser.js';
import { clothingMini, fixturesDir } from '../test/support/fixtures.js';
import { inProcessPipeline } from '../test/support/in-process-pipeline.js';
import { testBackbone } from '../test/support/test-backbone.js';
import { clothingSmallDir, listSplit, readBytes, repoRoot } from './bench-util.js';

const out = resolve(process.argv[2] ?? join(repoRoot, 'docs', 'screenshots'));
const P = 'closet';
await initTf();
const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-shots-')) });
const real = existsSync(clothingSmallDir);
const photo = (f: { label: string; path: string }) => ({ ...f, bytes: readBytes(f.path) });
const trainPhotos = real ? listSplit(clothingSmallDir, 'train', 30).map(photo) : clothingMini('train');
const askPhotos = real ? listSplit(clothingSmallDir, 'test', 3).map(photo) : clothingMini('eval');
const backbone = await loadBackbone(
  real
    ? await readBackbone(store, await ensureDefaultBackbone(store, { photosDir: calibrationPhotosDir() }))
    : await testBackbone(),
);
const { reconciler, trainer } = inProcessPipeline({ store, backbone });

// Every photo, two of them under the wrong label so the suspects page has something to show.
const wrong = new Map([
  ['hat', 'shoes'],
  ['pants', 't-shirt'],
]);
for (const p of [...trainPhotos, ...askPhotos.slice(0, 12)]) {
  const label = wrong.get(p.label) ?? p.label;
  wrong.delete(p.label);
  await store.put(`uploads/${P}/${label}/${p.label}-${p.path.split('/').pop()}`, p.bytes);
}
await store.put(
  `uploads/${P}/hat/truncated.jpg`,
  readFileSync(join(fixturesDir, 'malformed', 'truncated.jpg')),
);
await reconciler.scan();
// Head-only: a fine-tuning would make the screenshots take minutes for nothing the pages show differently.
await updateProjectSettings(store, P, () => ({ trainingMode: 'head' }));
const outcome = await trainer.run(P, { ignoreQuietWindow: true });
console.error(`trained: ${outcome.status}`);
await updateProjectSettings(store, P, () => ({ review: { enabled: true, below: 0.9, sample: 1 } }));
const api = createEdgeApp({ store, backbone: async () => backbone, config: { requireKeys: false } });
for (const p of askPhotos.slice(12)) {
  await api.app.request(`/v1/projects/${P}/predict`, {
    method: 'POST',
    body: p.bytes as Uint8Array<ArrayBuffer>,
    headers: { 'content-type': 'image/jpeg' },
  });
}
await api.reviews.settle();
await createKey(store, P, { name: 'mobile app' });

const ui = createUiApp({
  store,
  // Try it as the dashboard command wires it: an edge app of its own, no key, no review copies.
  predict: inProcessPredictor({ store, backbone: async () => backbone }),
});
const server = await serveOnLoopback(ui.fetch);
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
mkdirSync(out, { recursive: true });
const shots: [string, string][] = [
  ['projects', '/ui/'],
  ['data', `/ui/p/${P}/data`],
  ['model', `/ui/p/${P}/model`],
  ['mistakes', `/ui/p/${P}/mistakes`],
  ['suspects', `/ui/p/${P}/suspects`],
  ['review', `/ui/p/${P}/review`],
  ['try', `/ui/p/${P}/try`],
  ['keys', `/ui/p/${P}/keys`],
];
for (const [name, path] of shots) {
  await page.goto(`${server.url}${path}`, { waitUntil: 'networkidle' });
  if (name === 'mistakes') {
    // The fullest off-diagonal cell, opened, is what the page is for.
    const miss = await page.$$eval('td.cell.miss a', (as) =>
      as
        .map((a) => ({ href: a.getAttribute('href') ?? '', n: Number(a.textContent) }))
        .sort((x, y) => y.n - x.n),
    );
    if (miss[0] && miss[0].n > 0)
      await page.goto(`${server.url}${miss[0].href}`, { waitUntil: 'networkidle' });
  }
  if (name === 'try') {
    await page.setInputFiles('#try-input', askPhotos[0]!.path);
    await page.waitForSelector('#try-result[data-done="1"]');
  }
  // Mistakes whole: the heat map above the cell it opened.
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: name === 'mistakes' });
  console.log(JSON.stringify({ page: name, file: join(out, `${name}.png`) }));
}
await browser.close();
await server.close();
