import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../../shared/layout/index.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { fixturesDir } from '../../test/support/fixtures.js';
import { uploadDirectory } from './upload-command.js';
import { uploadTextTable } from './upload-table.js';

const INTENTS = join(fixturesDir, 'text', 'intents.csv');

function freshStore(): ObjectStore {
  return createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-table-')) });
}

function scratch(name: string, body: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hs-table-in-')), name);
  writeFileSync(path, body);
  return path;
}

async function keys(store: ObjectStore, project: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(`${layout.uploadsPrefix}${project}/`)) out.push(o.key);
  return out.sort();
}

describe('headstart upload of a table of texts', () => {
  it('writes one content-addressed .txt per row and skips them all the second time', async () => {
    const store = freshStore();
    const seen: number[] = [];
    const first = await uploadTextTable({
      store,
      project: 'intents',
      path: INTENTS,
      progress: (done) => seen.push(done),
    });
    expect(first.refused).toEqual([]);
    expect(first.uploaded).toHaveLength(36);
    expect(seen.at(-1)).toBe(36);
    const written = await keys(store, 'intents');
    expect(written).toHaveLength(36);
    expect(written.every((k) => /^uploads\/intents\/[a-z_]+\/[0-9a-f]{32}\.txt$/.test(k))).toBe(true);
    const one = await store.get(written[0]!);
    expect(new TextDecoder().decode(one!.body).length).toBeGreaterThan(5);
    const second = await uploadTextTable({ store, project: 'intents', path: INTENTS });
    expect(second).toMatchObject({ uploaded: [], refused: [] });
    expect(second.skipped).toHaveLength(36);
  });

  it('refuses empty and oversized texts and bad labels with their line, uploading the rest', async () => {
    const store = freshStore();
    const path = scratch(
      'data.csv',
      `category,query\nbalance,"what is my balance, please?"\nbalance,"  "\n../x,hello\nbalance,${'a'.repeat(10_001)}\n`,
    );
    const s = await uploadTextTable({
      store,
      project: 'bank',
      path,
      columns: { textColumn: 'query', labelColumn: 'category' },
    });
    expect(s.uploaded).toEqual(['data.csv:2']);
    expect(s.refused.map((r) => [r.file, r.code])).toEqual([
      ['data.csv:3', 'empty_text'],
      ['data.csv:4', 'invalid_label'],
      ['data.csv:5', 'text_too_long'],
    ]);
    expect(await keys(store, 'bank')).toHaveLength(1);
  });

  it('reads JSON Lines with text and label fields', async () => {
    const store = freshStore();
    const path = scratch(
      'd.jsonl',
      '{"text":"hi there","label":"greet"}\n\n{"text":"bye now","label":"leave"}\n',
    );
    const s = await uploadTextTable({ store, project: 'chat', path });
    expect(s.uploaded).toEqual(['d.jsonl:1', 'd.jsonl:3']);
    expect((await keys(store, 'chat')).map((k) => k.split('/')[2])).toEqual(['greet', 'leave']);
  });

  it('names the missing column and the flags that choose another', async () => {
    const path = scratch('d.csv', 'category,text\nx,hello\n');
    await expect(uploadTextTable({ store: freshStore(), project: 'p', path })).rejects.toThrow(
      /no 'label' column.*--label-column/,
    );
  });

  it('uploads the .txt files of a folder of label folders as texts, refusing a binary one with its reason', async () => {
    const store = freshStore();
    const dir = mkdtempSync(join(tmpdir(), 'hs-text-dir-'));
    mkdirSync(join(dir, 'card'));
    writeFileSync(join(dir, 'card', 'lost card (1).txt'), 'my card is lost');
    writeFileSync(join(dir, 'card', 'noise.txt'), new Uint8Array([0x89, 0x00, 0x01, 0xff]));
    const summary = await uploadDirectory({ store, project: 'intents', dir, maxUploadBytes: 1 << 20 });
    expect(summary.uploaded).toHaveLength(1);
    expect(summary.refused).toEqual([
      {
        file: join(dir, 'card', 'noise.txt'),
        code: 'binary_text',
        message: expect.stringContaining('binary'),
      },
    ]);
    expect(await keys(store, 'intents')).toEqual(['uploads/intents/card/lost card (1).txt']);
    const again = await uploadDirectory({ store, project: 'intents', dir, maxUploadBytes: 1 << 20 });
    expect(again.skipped).toHaveLength(1);
  });
});
