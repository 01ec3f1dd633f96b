import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../layout/index.js';
import { createFsStore } from '../store/index.js';
import {
  readProjectSettings,
  servingOf,
  UNSURE_FLIP_BELOW,
  updateProjectSettings,
} from './project-settings.js';

const newStore = () => createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-settings-')) });

describe('project settings', () => {
  it('serve mirrors of unsure photos by default, of every photo with predictFlip true, and never without hflip views', async () => {
    const defaults = await readProjectSettings(newStore(), 'closet');
    expect(defaults.predictFlip).toBe('unsure');
    expect(servingOf(defaults)).toEqual({ flip: true, flipBelow: UNSURE_FLIP_BELOW });
    expect(servingOf({ ...defaults, predictFlip: true })).toEqual({ flip: true });
    expect(servingOf({ ...defaults, predictFlip: false })).toEqual({ flip: false });
    // A project that turned mirrored views off says a mirror changes what its photos mean.
    expect(servingOf({ ...defaults, augmentations: [] })).toEqual({ flip: false });
    expect(servingOf({ ...defaults, predictFlip: true, augmentations: [] })).toEqual({ flip: true });
    expect(servingOf({ ...defaults, flipBelow: 0.8 })).toEqual({ flip: true, flipBelow: 0.8 });
  });

  it('have the review queue off by default, with a 0.5 threshold and no sample', async () => {
    expect((await readProjectSettings(newStore(), 'closet')).review).toEqual({
      enabled: false,
      below: 0.5,
      sample: 0,
    });
  });

  it('change only what is set, leaving the rest of the file as written', async () => {
    const store = newStore();
    await store.put(layout.projectSettings('closet'), JSON.stringify({ predictFlip: true }));
    await updateProjectSettings(store, 'closet', () => ({
      review: { enabled: true, below: 0.4, sample: 0 },
    }));
    const raw = JSON.parse(
      new TextDecoder().decode((await store.get(layout.projectSettings('closet')))!.body),
    );
    // Settings left to their defaults are not written out, so they keep following the defaults.
    expect(raw).toEqual({ predictFlip: true, review: { enabled: true, below: 0.4, sample: 0 } });
  });

  it('refuse a change the schema does not allow, and write nothing', async () => {
    const store = newStore();
    await expect(
      updateProjectSettings(store, 'closet', () => ({ review: { enabled: true, below: 2, sample: 0 } })),
    ).rejects.toThrow();
    expect(await store.head(layout.projectSettings('closet'))).toBeUndefined();
  });

  it('land both of two changes made at once', async () => {
    const store = newStore();
    await Promise.all([
      updateProjectSettings(store, 'closet', () => ({ rejectUnknown: true })),
      updateProjectSettings(store, 'closet', () => ({ predictFlip: true })),
    ]);
    expect(await readProjectSettings(store, 'closet')).toMatchObject({
      rejectUnknown: true,
      predictFlip: true,
    });
  });
});
