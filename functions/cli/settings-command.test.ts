import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { layout } from '../../shared/layout/index.js';
import { readProjectSettings } from '../../shared/pipeline/project-settings.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { runCli } from '../../test/support/run-cli.js';

let home: string;
let store: ObjectStore;
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'headstart-cli-settings-'));
  mkdirSync(join(home, 'store'));
  store = createFsStore({ root: join(home, 'store') });
});

const cli = (...args: string[]) => runCli(home, args);

describe('headstart settings', () => {
  it('shows the defaults of a project that has no settings file, as text and JSON', async () => {
    const text = await cli('settings', '--project', 'fresh');
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/predictFlip\s+"unsure"/);
    expect(text.out).toMatch(/augmentations\s+\["hflip"\]/);
    const json = JSON.parse((await cli('settings', '--project', 'fresh', '--json')).out);
    expect(json.settings).toMatchObject({
      trainingMode: 'auto',
      rejectUnknown: false,
      review: { below: 0.5 },
    });
    expect(await store.get(layout.projectSettings('fresh'))).toBeUndefined();
  });

  it('sets booleans, text, lists and one field of review, keeping what the file already held', async () => {
    await store.put(
      layout.projectSettings('shop'),
      JSON.stringify({ review: { enabled: true, sample: 0.1 } }),
    );
    const r = await cli(
      'settings',
      '--project',
      'shop',
      'predictFlip=true',
      'trainingMode=head',
      'augmentations=[]',
      'review.below=0.3',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(
      'predictFlip, trainingMode, augmentations: used from the next training (`headstart train --project shop` trains now, with the photos unchanged)',
    );
    expect(r.out).toMatch(/review.below: the API reads it within 5 minutes/);
    expect(await readProjectSettings(store, 'shop')).toMatchObject({
      predictFlip: true,
      trainingMode: 'head',
      augmentations: [],
      review: { enabled: true, below: 0.3, sample: 0.1 },
    });
  });

  it('takes predictFlip=unsure, a flipBelow in (0, 1] and a maxFlipShare in [0, 1], and refuses any other word or number', async () => {
    await store.put(layout.projectSettings('gated'), JSON.stringify({ predictFlip: true }));
    const r = await cli('settings', '--project', 'gated', 'predictFlip=unsure');
    expect(r.code, r.err).toBe(0);
    expect((await readProjectSettings(store, 'gated')).predictFlip).toBe('unsure');
    const bad = await cli('settings', '--project', 'gated', 'predictFlip=sometimes');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/predictFlip/);
    expect((await readProjectSettings(store, 'gated')).predictFlip).toBe('unsure');
    expect((await cli('settings', '--project', 'gated', 'flipBelow=0.8')).code).toBe(0);
    expect((await cli('settings', '--project', 'gated', 'flipBelow=2')).code).toBe(2);
    expect((await readProjectSettings(store, 'gated')).flipBelow).toBe(0.8);
    expect((await cli('settings', '--project', 'gated', 'maxFlipShare=0.4')).code).toBe(0);
    const over = await cli('settings', '--project', 'gated', 'maxFlipShare=1.5');
    expect(over.code).toBe(2);
    expect(over.err).toMatch(/maxFlipShare/);
    expect((await readProjectSettings(store, 'gated')).maxFlipShare).toBe(0.4);
  });

  it('refuses an unknown key, a bad value or a missing = with exit 2 and writes nothing', async () => {
    const before = await store.get(layout.projectSettings('shop'));
    const unknown = await cli('settings', '--project', 'shop', 'predictFlop=true');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown setting 'predictFlop'; settings: augmentations, trainingMode/);
    const nested = await cli('settings', '--project', 'shop', 'review.bellow=0.3');
    expect(nested.err).toMatch(/unknown setting 'review.bellow'; review has enabled, below, sample/);
    const bad = await cli('settings', '--project', 'shop', 'predictFlip=false', 'trainingMode=fast');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/setting trainingMode: Invalid enum value/);
    const range = await cli('settings', '--project', 'shop', 'review.below=2');
    expect(range.err).toMatch(/setting review.below: Number must be less than or equal to 1/);
    expect((await cli('settings', '--project', 'shop', 'predictFlip')).err).toMatch(/is not KEY=VALUE/);
    expect((await store.get(layout.projectSettings('shop')))?.etag).toBe(before?.etag);
  });
});
