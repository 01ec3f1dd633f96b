import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { nextSequencer } from '../../test/support/s3-events.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { type Backbone, loadBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { readQuarantine } from '../dataset/quarantine.js';
import { decodeTextUpload } from '../dataset/text-upload.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createUploadExtractor } from './extract-uploads.js';
import { readProjectSettings, updateProjectSettings } from './project-settings.js';

let backbone: Backbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
});

const utf8 = (s: string) => new TextEncoder().encode(s);

function stack() {
  const store: ObjectStore = createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-text-up-')) });
  const index = createDatasetIndex(store);
  const extractor = createUploadExtractor({ store, backbone, index, requestRetrain: async () => {} });
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
  it('indexes a .txt upload as an example of its folder label', async () => {
    const { index, upload, store } = stack();
    const out = await upload('uploads/intents/card_arrival/a.txt', utf8('Where is my new card?'));
    expect(out).toMatchObject({ status: 'indexed', label: 'card_arrival' });
    expect((await index.entry('intents', 'uploads/intents/card_arrival/a.txt'))?.state).toBe('example');
    expect((await readProjectSettings(store, 'intents')).modality).toBe('text');
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
    const { store, upload } = stack();
    await upload('uploads/mixed/a/one.txt', utf8('hello there'));
    const photo = clothingMini('train')[0]!.bytes;
    const out = await upload('uploads/mixed/a/two.jpg', photo);
    expect(out).toMatchObject({ status: 'quarantined', code: 'modality_mismatch' });
    if (out.status !== 'quarantined') throw new Error('not quarantined');
    expect(out.message).toMatch(/text project.*photo/);
    expect((await readQuarantine(store, 'uploads/mixed/a/two.jpg'))?.code).toBe('modality_mismatch');
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
