import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../layout/index.js';
import { createFsStore } from '../store/index.js';
import {
  gateOnValidation,
  MAX_FLIP_SHARE,
  readProjectSettings,
  servingOf,
  trainedAsSettingsSay,
  trainingSettingsOf,
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

  it('tell a version trained under other training-time settings from one trained under these', async () => {
    const settings = await readProjectSettings(newStore(), 'closet');
    const recorded = trainingSettingsOf(settings);
    expect(Object.keys(recorded)).toEqual([...Object.keys(recorded)].sort());
    expect(recorded).not.toHaveProperty('rejectUnknown');
    expect(trainedAsSettingsSay(recorded, { ...settings, rejectUnknown: true })).toBe(true);
    expect(trainedAsSettingsSay(recorded, { ...settings, classWeight: 'none' })).toBe(false);
    expect(trainedAsSettingsSay(recorded, { ...settings, augmentations: [] })).toBe(false);
    expect(trainedAsSettingsSay(recorded, { ...settings, flipBelow: 0.7 })).toBe(false);
    // A version from before versions recorded them is taken as trained under today's settings.
    expect(trainedAsSettingsSay(undefined, { ...settings, classWeight: 'none' })).toBe(true);
  });

  it('lower the unsure gate of a version to the validation rank maxShare allows, and never raise it', () => {
    // Ten validation photos of two labels whose top scores are 0.5, 0.55, ..., 0.95.
    const tops = Array.from({ length: 10 }, (_, i) => 0.5 + i * 0.05);
    const probs = Float32Array.from(tops.flatMap((t) => [t, 1 - t]));
    const gate = (flipBelow: number, maxShare: number) =>
      gateOnValidation({ flip: true, flipBelow }, { probs, labels: 2, maxShare });
    // Under 0.6, two of ten are mirrored: within a share of 0.25, so the requested gate stands.
    expect(gate(0.6, 0.25).serving).toEqual({ flip: true, flipBelow: 0.6 });
    expect(gate(0.6, 0.25).report).toMatchObject({ requestedBelow: 0.6, validationShare: 0.2 });
    // Under 0.9, eight would be: the gate drops to the third photo's top score, which mirrors two.
    const capped = gate(0.9, 0.25);
    expect(capped.serving.flipBelow).toBeCloseTo(0.6, 6);
    expect(capped.report).toMatchObject({ requestedBelow: 0.9, maxShare: 0.25, validationShare: 0.2 });
    expect(gate(0.9, 1).serving.flipBelow).toBe(0.9);
    expect(gate(0.9, 0).report?.validationShare).toBe(0);
    // Every photo or none: nothing to calibrate.
    expect(gateOnValidation({ flip: true }, { probs, labels: 2, maxShare: 0 })).toEqual({
      serving: { flip: true },
    });
    expect(gateOnValidation({ flip: false }, { probs, labels: 2, maxShare: 0 }).report).toBeUndefined();
    const none = gateOnValidation(
      { flip: true, flipBelow: 0.6 },
      { probs: new Float32Array(0), labels: 2, maxShare: 0 },
    );
    expect(none).toEqual({
      serving: { flip: true, flipBelow: 0.6 },
      report: { requestedBelow: 0.6, flipBelow: 0.6, maxShare: 0, validationShare: null },
    });
  });

  it('cap the share of validation photos the gate mirrors at MAX_FLIP_SHARE by default', async () => {
    expect((await readProjectSettings(newStore(), 'closet')).maxFlipShare).toBe(MAX_FLIP_SHARE);
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
