import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { uploadTime } from '../pipeline/extract-uploads.js';
import { createFsStore } from '../store/index.js';
import { createDatasetIndex, type Example } from './dataset-index.js';
import { dedupeExamples } from './dedupe-examples.js';

const ex = (key: string, label: string, sha256: string, uploadedAt: string): Example => ({
  key,
  label,
  sha256,
  bytes: 1,
  uploadedAt,
});

describe('dedupeExamples', () => {
  it('keeps one example per photo and reports same-label copies as a duplicate', () => {
    const d = dedupeExamples([
      ex('uploads/p/hat/b.jpg', 'hat', 'x', '2026-01-02T00:00:00Z'),
      ex('uploads/p/hat/a.jpg', 'hat', 'x', '2026-01-01T00:00:00Z'),
      ex('uploads/p/hat/c.jpg', 'hat', 'y', '2026-01-01T00:00:00Z'),
    ]);
    expect(d.examples.map((e) => e.key)).toEqual(['uploads/p/hat/a.jpg', 'uploads/p/hat/c.jpg']);
    expect(d.duplicates).toEqual([
      {
        sha256: 'x',
        label: 'hat',
        keys: ['uploads/p/hat/a.jpg', 'uploads/p/hat/b.jpg'],
        kept: 'uploads/p/hat/a.jpg',
      },
    ]);
    expect(d.conflicts).toEqual([]);
    expect(d.extraKeys).toBe(1);
  });

  it('gives a photo in two labels to the most recent upload, whatever the key order', () => {
    const d = dedupeExamples([
      ex('uploads/p/shoes/x.jpg', 'shoes', 'x', '2026-01-01T00:00:00Z'),
      ex('uploads/p/hat/x.jpg', 'hat', 'x', '2026-01-01T00:00:05Z'),
      ex('uploads/p/shoes/copy.jpg', 'shoes', 'x', '2026-01-01T00:00:01Z'),
    ]);
    expect(d.examples).toEqual([expect.objectContaining({ key: 'uploads/p/hat/x.jpg', label: 'hat' })]);
    expect(d.conflicts).toHaveLength(1);
    expect(d.conflicts[0]!.winner).toEqual({ key: 'uploads/p/hat/x.jpg', label: 'hat' });
    expect(d.conflicts[0]!.keys.map((k) => [k.key, k.label])).toEqual([
      ['uploads/p/hat/x.jpg', 'hat'],
      ['uploads/p/shoes/copy.jpg', 'shoes'],
      ['uploads/p/shoes/x.jpg', 'shoes'],
    ]);
    expect(d.extraKeys).toBe(2);
  });

  it('breaks a tie between equally recent uploads by key order, the same way every time', () => {
    const a = ex('uploads/p/hat/x.jpg', 'hat', 'x', '2026-01-01T00:00:00Z');
    const b = ex('uploads/p/shoes/x.jpg', 'shoes', 'x', '2026-01-01T00:00:00Z');
    expect(dedupeExamples([b, a]).conflicts[0]!.winner.key).toBe(a.key);
    expect(dedupeExamples([a, b]).conflicts[0]!.winner.key).toBe(a.key);
  });

  it('dates index entries written before upload times were recorded by when they were indexed', async () => {
    const index = createDatasetIndex(
      createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-dedupe-')) }),
    );
    const entry = { state: 'example' as const, label: 'hat', sha256: 'x', bytes: 1, sequencer: '01' };
    await index.apply('p', { ...entry, key: 'uploads/p/hat/old.jpg', at: '2026-01-01T00:00:00.000Z' });
    await index.apply('p', {
      ...entry,
      key: 'uploads/p/hat/new.jpg',
      uploadedAt: '2026-02-01T00:00:00.000Z',
      at: '2026-03-01T00:00:00.000Z',
    });
    expect((await index.snapshot('p')).map((e) => [e.key, e.uploadedAt])).toEqual([
      ['uploads/p/hat/new.jpg', '2026-02-01T00:00:00.000Z'],
      ['uploads/p/hat/old.jpg', '2026-01-01T00:00:00.000Z'],
    ]);
  });
});

describe('uploadTime', () => {
  it("refines S3's whole-second Last-Modified with the event's milliseconds, and trusts a precise one", () => {
    expect(uploadTime(new Date('2026-01-01T00:00:07Z'), '2026-01-01T00:00:07.345Z')).toBe(
      '2026-01-01T00:00:07.345Z',
    );
    // A reconciler's event time is when it looked, seconds later: the object's own time stands.
    expect(uploadTime(new Date('2026-01-01T00:00:07Z'), '2026-01-01T00:00:09.000Z')).toBe(
      '2026-01-01T00:00:07.000Z',
    );
    expect(uploadTime(new Date('2026-01-01T00:00:07.120Z'), '2026-01-01T00:00:07.345Z')).toBe(
      '2026-01-01T00:00:07.120Z',
    );
  });
});
