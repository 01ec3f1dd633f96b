import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { nextSequencer } from '../../test/support/s3-events.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { type Backbone, loadBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { decodeSparseFeatures, encodeSparseFeatures } from '../dataset/feature-file.js';
import { readQuarantine } from '../dataset/quarantine.js';
import { decodeTextUpload } from '../dataset/text-upload.js';
import { layout } from '../layout/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { buildTextBackbone, readWinkVectors, type TextBackbone } from '../text/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createUploadExtractor } from './extract-uploads.js';
import { readProjectSettings, updateProjectSettings } from './project-settings.js';

let backbone: Backbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
});

const utf8 = (s: string) => new TextEncoder().encode(s);

const tinyJson = readFileSync(new URL('../../test/fixtures/text/tiny-vectors.json', import.meta.url), 'utf8');

async function tinyTextBackbone(): Promise<TextBackbone> {
  async function* one() {
    yield tinyJson;
  }
  const built = await buildTextBackbone({
    source: readWinkVectors(one(), { maxRank: 1000, dim: 4 }),
    sourceId: 'tiny',
    dim: 4,
  });
  return built.backbone;
}

function stack(options: { text?: TextBackbone; store?: ObjectStore } = {}) {
  const store: ObjectStore =
    options.store ?? createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-text-up-')) });
  const index = createDatasetIndex(store);
  const text = options.text;
  const extractor = createUploadExtractor({
    store,
    backbone,
    index,
    requestRetrain: async () => {},
    ...(text ? { textBackbone: async () => text } : {}),
  });
  const upload = async (key: string, body: Uint8Array) => {
    await store.put(key, body);
    return extractor.handle({
      type: 'created',
      key,
      sequencer: nextSequencer(),
      eventTime: new Date().toISOString(),
    });
  };
  return { store, index, upload };
}

describe('text uploads', () => {
  it('indexes a .txt upload with its sentence feature cached under the text backbone', async () => {
    const text = await tinyTextBackbone();
    const { index, upload, store } = stack({ text });
    const out = await upload('uploads/intents/card_arrival/a.txt', utf8('Where is my new card?'));
    expect(out).toMatchObject({ status: 'indexed', label: 'card_arrival', computed: 1 });
    const entry = await index.entry('intents', 'uploads/intents/card_arrival/a.txt');
    expect(entry?.state).toBe('example');
    expect((await readProjectSettings(store, 'intents')).modality).toBe('text');
    if (out.status !== 'indexed') throw new Error('not indexed');
    const cached = await store.get(layout.feature(text.manifest.id, out.sha256));
    const decoded = decodeSparseFeatures(cached!.body, text.manifest.id);
    const expected = text.featurizer.featurize('Where is my new card?');
    expect(decoded.dim).toBe(expected.dim);
    expect([...decoded.indices]).toEqual([...expected.indices]);
    expect([...decoded.values]).toEqual([...expected.values]);
    // The same text again under another name computes nothing.
    const again = await upload('uploads/intents/card_arrival/b.txt', utf8('Where is my new card?'));
    expect(again).toMatchObject({ status: 'indexed', computed: 0 });
  });

  it('leaves a text upload for a retry, unindexed, when no text backbone is at hand', async () => {
    const { index, upload } = stack();
    await expect(upload('uploads/intents/a/x.txt', utf8('hello'))).rejects.toThrow(/no text backbone/);
    expect(await index.entry('intents', 'uploads/intents/a/x.txt')).toBeUndefined();
  });

  it.each([
    ['empty_text', utf8('  \n\t ')],
    ['text_too_long', utf8('a'.repeat(10_001))],
    ['invalid_utf8', new Uint8Array([0x48, 0x69, 0xc3, 0x28])],
    ['binary_text', new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x00, 0x01, 0x02])],
  ])('sets aside a text upload with code %s and its reason', async (code, body) => {
    const { store, upload } = stack();
    const key = 'uploads/intents/card_arrival/bad.txt';
    const out = await upload(key, body);
    expect(out).toMatchObject({ status: 'quarantined', code });
    const record = await readQuarantine(store, key);
    expect(record?.code).toBe(code);
    expect(record?.message.length).toBeGreaterThan(10);
    // A refused first file does not decide what the project holds.
    expect((await readProjectSettings(store, 'intents')).modality).toBeUndefined();
  });

  it('refuses a photo in a project its first upload made a text project, saying why', async () => {
    const { store, upload } = stack({ text: await tinyTextBackbone() });
    await upload('uploads/mixed/a/one.txt', utf8('hello there'));
    const photo = clothingMini('train')[0]!.bytes;
    const out = await upload('uploads/mixed/a/two.jpg', photo);
    expect(out).toMatchObject({ status: 'quarantined', code: 'modality_mismatch' });
    if (out.status !== 'quarantined') throw new Error('not quarantined');
    expect(out.message).toMatch(/text project.*photo/);
    expect((await readQuarantine(store, 'uploads/mixed/a/two.jpg'))?.code).toBe('modality_mismatch');
  });

  it('counts a project made before modalities, with indexed photos and no modality setting, as an image project', async () => {
    const text = await tinyTextBackbone();
    const { store, upload: before } = stack({ text });
    const photo = clothingMini('train')[0]!.bytes;
    expect((await before('uploads/old/shirt/one.jpg', photo)).status).toBe('indexed');
    // As an old project's settings are: none at all; and a new extractor (new code) meets it.
    await store.delete(layout.projectSettings('old'));
    expect((await readProjectSettings(store, 'old')).modality).toBeUndefined();
    const { upload } = stack({ text, store });
    const out = await upload('uploads/old/shirt/note.txt', utf8('a red shirt'));
    expect(out).toMatchObject({ status: 'quarantined', code: 'modality_mismatch' });
    if (out.status !== 'quarantined') throw new Error('not quarantined');
    expect(out.message).toMatch(/'old' is a image project.*text upload/);
    expect((await readQuarantine(store, 'uploads/old/shirt/note.txt'))?.code).toBe('modality_mismatch');
    expect((await readProjectSettings(store, 'old')).modality).toBe('image');
  });

  it('refuses a text in a project whose settings say it holds photos', async () => {
    const { store, upload } = stack();
    await updateProjectSettings(store, 'shoes', () => ({ modality: 'image' }));
    const out = await upload('uploads/shoes/boot/note.txt', utf8('a boot'));
    expect(out).toMatchObject({ status: 'quarantined', code: 'modality_mismatch' });
    if (out.status !== 'quarantined') throw new Error('not quarantined');
    expect(out.message).toMatch(/image project.*text upload/);
  });
});

describe('decodeTextUpload', () => {
  it('keeps a text with a byte-order mark, tabs and line breaks', () => {
    expect(decodeTextUpload(utf8('\ufeffline one\r\n\tline two'))).toBe('line one\r\n\tline two');
  });

  it('counts characters, not UTF-16 units, against the limit', () => {
    expect(decodeTextUpload(utf8('😀'.repeat(10)), 10)).toHaveLength(20);
    expect(() => decodeTextUpload(utf8('😀'.repeat(11)), 10)).toThrow(/11 characters/);
  });
});

describe('sparse feature files', () => {
  it('round-trips a sparse row and refuses one cut short or of another backbone', () => {
    const f = { dim: 10, indices: new Int32Array([1, 7]), values: new Float32Array([0.5, -2]) };
    const bytes = encodeSparseFeatures('text-a', f);
    const back = decodeSparseFeatures(bytes, 'text-a');
    expect([...back.indices]).toEqual([1, 7]);
    expect([...back.values]).toEqual([0.5, -2]);
    expect(() => decodeSparseFeatures(bytes.subarray(0, bytes.length - 4))).toThrow(/bytes/);
    expect(() => decodeSparseFeatures(bytes, 'text-b')).toThrow(/'text-a', not 'text-b'/);
  });
});
