import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { layout } from '../../shared/layout/index.js';
import { readProjectSettings } from '../../shared/pipeline/project-settings.js';
import type { ReviewItem } from '../../shared/review/index.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { clothingMini } from '../../test/support/fixtures.js';
import { runCli } from '../../test/support/run-cli.js';

let home: string;
let store: ObjectStore;
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'headstart-cli-review-'));
  mkdirSync(join(home, 'store'));
  store = createFsStore({ root: join(home, 'store') });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const cli = (...args: string[]) => runCli(home, args);

/** An item as the edge writes it: the image, then the record. */
async function queue(project: string, bytes: Uint8Array, score: number): Promise<string> {
  const id = createHash('sha256').update(bytes).digest('hex');
  await store.put(layout.reviewImage(project, id), bytes, { contentType: 'image/jpeg' });
  const item: ReviewItem = {
    id,
    format: 'jpeg',
    bytes: bytes.length,
    prediction: { label: 'shoes', score },
    unknown: false,
    outlierScore: 1.5,
    reason: 'low_score',
    createdAt: new Date().toISOString(),
    version: 'v1',
  };
  await store.put(layout.reviewItem(project, id), JSON.stringify(item));
  return id;
}

describe('headstart review', () => {
  it('turns the queue on with a threshold and a sample rate, keeps other settings, and off again', async () => {
    await store.put(layout.projectSettings('shop'), JSON.stringify({ trainingMode: 'head' }));
    const on = await cli('review', 'enable', '--project', 'shop', '--below', '0.6', '--sample', '0.05');
    expect(on.code, on.err).toBe(0);
    expect(on.out).toMatch(/on: .*below 0.6.*5%/);
    expect(await readProjectSettings(store, 'shop')).toMatchObject({
      trainingMode: 'head',
      review: { enabled: true, below: 0.6, sample: 0.05 },
    });
    expect((await cli('review', 'disable', '--project', 'shop')).out).toMatch(/off/);
    expect((await readProjectSettings(store, 'shop')).review.enabled).toBe(false);
    const bad = await cli('review', 'enable', '--project', 'shop', '--below', '2');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--below must be a number from 0 to 1/);
    expect((await cli('review', 'help', '--project', 'shop')).code).toBe(2);
    expect((await cli('review', '--help')).out).toContain('privacy');
  });

  it('lists, labels and discards items by their id or its first characters', async () => {
    const [a, b] = clothingMini('eval');
    const idA = await queue('closet', a!.bytes, 0.31);
    const idB = await queue('closet', b!.bytes, 0.42);
    const listed = JSON.parse((await cli('review', 'list', '--project', 'closet', '--json')).out);
    expect(listed.map((i: { id: string }) => i.id).sort()).toEqual([idA, idB].sort());
    expect(Object.keys(listed[0]).sort()).toEqual(
      ['createdAt', 'id', 'outlierScore', 'prediction', 'reason', 'unknown', 'version'].sort(),
    );
    expect((await cli('review', 'list', '--project', 'closet')).out).toContain(idA.slice(0, 12));

    const labelled = await cli('review', 'label', '--project', 'closet', idA.slice(0, 10), '--as', 'hat');
    expect(labelled.code, labelled.err).toBe(0);
    expect(labelled.out).toContain(`uploads/closet/hat/review-${idA}.jpg`);
    expect((await store.get(`uploads/closet/hat/review-${idA}.jpg`))?.body).toEqual(a!.bytes);
    expect((await cli('review', 'label', '--project', 'closet', idA, '--as', 'hat')).out).toMatch(
      /already labelled hat.*nothing to do/,
    );
    const other = await cli('review', 'label', '--project', 'closet', idA, '--as', 'shoes');
    expect(other.code).toBe(2);
    expect(other.err).toMatch(/already labelled 'hat'/);

    expect((await cli('review', 'discard', '--project', 'closet', idB)).code).toBe(0);
    expect(JSON.parse((await cli('review', 'list', '--project', 'closet', '--json')).out)).toEqual([]);
    const gone = await cli('review', 'discard', '--project', 'closet', idB);
    expect(gone.code).toBe(2);
    expect(gone.err).toMatch(/no review item/);
    expect((await cli('review', 'label', '--project', 'closet', 'zz', '--as', 'hat')).err).toMatch(
      /not a review item id/,
    );
  });
});
