// npm run bench:augment: clothing-small accuracy with and without cached augmented views, through the exported
// default backbone (what the functions run), and what the extra views cost to extract.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBackbone } from '../shared/backbone/index.js';
import { decodeImage, type ImageView } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';
import { computeMetrics, loadHead, trainHead } from '../shared/train/index.js';
import { testBackbone } from '../test/support/test-backbone.js';
import { clothingSmallDir, emit, listSplit, readBytes, repoRoot } from './bench-util.js';

const VIEWS: ImageView[] = ['hflip'];

async function main(): Promise<void> {
  await initTf();
  const backbone = await loadBackbone(await testBackbone());
  const files = (['train', 'validation', 'test'] as const).flatMap((split) =>
    listSplit(clothingSmallDir, split).map((f) => ({ ...f, split })),
  );
  if (files.length === 0) {
    emit('clothing_test_accuracy_augmented', null, 'ratio', { note: 'clothing-small not found' });
    return;
  }
  const labelNames = [...new Set(files.map((f) => f.label))].sort();
  const cacheDir = join(repoRoot, 'bench', '.cache');
  mkdirSync(cacheDir, { recursive: true });
  const dim = backbone.featureDim;

  const extract = async (view: ImageView, subset: typeof files) => {
    const key = createHash('sha256')
      .update(`${backbone.manifest.id}|${view}|${subset.map((f) => f.path).join('\n')}`)
      .digest('hex')
      .slice(0, 16);
    const path = join(cacheDir, `augment-${key}.bin`);
    if (existsSync(path))
      return { features: new Float32Array(readFileSync(path).buffer.slice(0)), seconds: Number.NaN };
    const out = new Float32Array(subset.length * dim);
    const t = performance.now();
    for (let i = 0; i < subset.length; i += 16) {
      const chunk = subset.slice(i, i + 16);
      const px = await Promise.all(
        chunk.map(
          async (f) => (await decodeImage(readBytes(f.path), { size: backbone.inputSize, view })).data,
        ),
      );
      (await backbone.extract(px)).forEach((v, j) => {
        out.set(v, (i + j) * dim);
      });
    }
    const seconds = (performance.now() - t) / 1000;
    writeFileSync(path, new Uint8Array(out.buffer));
    return { features: out, seconds };
  };

  const plain = await extract('identity', files);
  const fitting = files.filter((f) => f.split !== 'test');
  const idsOf = (fs: typeof files, suffix = '') =>
    fs.map((f) => `${createHash('sha256').update(f.path).digest('hex')}${suffix}`);
  const rows = (sel: (f: (typeof files)[number]) => boolean) =>
    files.map((f, i) => (sel(f) ? i : -1)).filter((i) => i >= 0);
  const gather = (src: Float32Array, idx: number[]) => {
    const out = new Float32Array(idx.length * dim);
    idx.forEach((r, j) => {
      out.set(src.subarray(r * dim, (r + 1) * dim), j * dim);
    });
    return out;
  };
  const fitIdx = rows((f) => f.split !== 'test');
  const testIdx = rows((f) => f.split === 'test');
  const validationIds = idsOf(files.filter((f) => f.split === 'validation'));
  const baseInput = {
    features: gather(plain.features, fitIdx),
    dim,
    labels: fitIdx.map((i) => labelNames.indexOf(files[i]!.label)),
    labelNames,
    ids: idsOf(fitIdx.map((i) => files[i]!)),
  };
  const score = async (input: typeof baseInput) => {
    const result = await trainHead(input, { validationIds });
    const head = await loadHead(result.head);
    const probs = head.predict(gather(plain.features, testIdx), testIdx.length);
    head.dispose();
    return computeMetrics(
      testIdx.map((i) => labelNames.indexOf(files[i]!.label)),
      probs,
      labelNames,
    );
  };
  const without = await score(baseInput);
  emit('clothing_test_accuracy_plain_exported', without.accuracy, 'ratio', {
    backbone: backbone.manifest.id,
  });

  // Views of training photos only: validation photos' views would leak into model selection.
  const trainOnly = fitting.filter((f) => f.split === 'train');
  let extraSeconds = 0;
  const withViews = { ...baseInput, labels: [...baseInput.labels], ids: [...baseInput.ids] };
  const parts: Float32Array[] = [baseInput.features];
  for (const view of VIEWS) {
    const v = await extract(view, trainOnly);
    if (!Number.isNaN(v.seconds)) extraSeconds += v.seconds;
    parts.push(v.features);
    withViews.labels.push(...trainOnly.map((f) => labelNames.indexOf(f.label)));
    withViews.ids.push(...idsOf(trainOnly, `.${view}`));
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  withViews.features = all;
  const withAug = await score(withViews);
  emit('clothing_test_accuracy_augmented', withAug.accuracy, 'ratio', { views: VIEWS });
  emit('clothing_test_macro_f1_augmented', withAug.macroF1, 'ratio');
  emit('clothing_test_macro_f1_plain_exported', without.macroF1, 'ratio');
  emit(
    'augment_extra_extract_ms_per_image',
    Number.isNaN(extraSeconds) || extraSeconds === 0
      ? null
      : (extraSeconds * 1000) / (trainOnly.length * VIEWS.length),
    'ms',
    {
      note: 'per extra view, decode included; 0 or null when read from cache',
    },
  );
}

await main();
