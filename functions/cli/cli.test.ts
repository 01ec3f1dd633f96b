import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFsStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { runCli } from '../../test/support/run-cli.js';
import { errorLine } from './headstart.js';

let home: string;
beforeAll(async () => {
  await initTf();
  home = mkdtempSync(join(tmpdir(), 'headstart-cli-'));
  mkdirSync(join(home, 'store')); // a home `npm start` made; a home without a store is an error
});
afterEach(() => {
  vi.restoreAllMocks();
});

const cli = (...args: string[]) => runCli(home, args);

describe('headstart CLI', () => {
  it('prints help for every command and refuses unknown ones in one line with exit code 2', async () => {
    for (const c of [
      'upload',
      'train',
      'status',
      'predict',
      'eval',
      'models',
      'rollback',
      'keys',
      'backbone',
      'start',
      'suspects',
      'relabel',
      'remove',
    ]) {
      const r = await cli(c, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`headstart ${c}`);
    }
    const bad = await cli('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.err.split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/unknown command 'frobnicate'/);
    expect((await cli('status')).err).toMatch(/--project is required/);
  });

  it("says an error's code once, whether or not its message starts with it", () => {
    let fsError: unknown;
    try {
      readFileSync(join(home, 'nope.jpg'));
    } catch (err) {
      fsError = err;
    }
    const line = errorLine(fsError).line;
    expect(line).toBe(`ENOENT: no such file or directory, open '${join(home, 'nope.jpg')}'`);
    const coded = Object.assign(new Error('the store is unreachable'), { code: 'store_unavailable' });
    expect(errorLine(coded)).toEqual({ line: 'store_unavailable: the store is unreachable', code: 1 });
  });

  it('creates, lists and revokes API keys, storing only their hashes', async () => {
    const created = JSON.parse(
      (await cli('keys', 'create', '--project', 'shop', '--name', 'app', '--json')).out,
    );
    expect(created.key).toMatch(/^hs_/);
    const listed = JSON.parse((await cli('keys', 'list', '--project', 'shop', '--json')).out);
    expect(listed.map((k: { keyId: string }) => k.keyId)).toEqual([created.info.keyId]);
    expect(JSON.stringify(listed)).not.toContain(created.key);
    expect((await cli('keys', 'revoke', '--project', 'shop', '--id', created.info.keyId)).code).toBe(0);
    const again = await cli('keys', 'revoke', '--project', 'shop', '--id', created.info.keyId);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/has no key/);
  });

  it('reports an empty project and refuses a rollback to a version that does not exist', async () => {
    const status = JSON.parse((await cli('status', '--project', 'empty', '--json')).out);
    expect(status).toMatchObject({
      dataset: { labels: {} },
      quarantined: [],
      training: { state: 'never' },
      model: { version: null },
    });
    const r = await cli('rollback', '--project', 'empty', '--to', 'v1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no version 'v1'/);
  });

  it('relabels and removes uploads by key, naming an unknown key, and lists no suspects before a training', async () => {
    const store = createFsStore({ root: join(home, 'store') });
    await store.put('uploads/tidy/hats/a.jpg', 'bytes of a');
    const none = await cli('suspects', '--project', 'tidy');
    expect(none).toMatchObject({ code: 0, out: 'no training of tidy has ranked label suspects yet' });
    expect(JSON.parse((await cli('suspects', '--project', 'tidy', '--json')).out)).toEqual([]);
    expect((await cli('suspects', '--project', 'tidy', '--limit', '0')).code).toBe(2);

    const same = await cli('relabel', '--project', 'tidy', 'hats/a.jpg', '--as', 'hats');
    expect(same).toMatchObject({
      code: 0,
      out: 'uploads/tidy/hats/a.jpg is already labelled hats; nothing changed',
    });
    const unknown = await cli('relabel', '--project', 'tidy', 'uploads/tidy/hats/b.jpg', '--as', 'caps');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^headstart: project 'tidy' has no upload 'uploads\/tidy\/hats\/b\.jpg'/);
    expect((await cli('remove', '--project', 'tidy', 'hats/b.jpg')).err).toMatch(
      /no upload 'uploads\/tidy\/hats\/b\.jpg'/,
    );
    expect((await cli('relabel', '--project', 'tidy', 'hats/a.jpg')).code).toBe(2);
    expect((await cli('relabel', '--project', 'tidy', 'uploads/other/hats/a.jpg', '--as', 'caps')).code).toBe(
      2,
    );

    const moved = await cli('relabel', '--project', 'tidy', 'hats/a.jpg', '--as', 'caps', '--json');
    expect(JSON.parse(moved.out)).toEqual({
      from: 'uploads/tidy/hats/a.jpg',
      to: 'uploads/tidy/caps/a.jpg',
      changed: true,
    });
    expect(new TextDecoder().decode((await store.get('uploads/tidy/caps/a.jpg'))!.body)).toBe('bytes of a');
    expect(await store.head('uploads/tidy/hats/a.jpg')).toBeUndefined();
    const removed = await cli('remove', '--project', 'tidy', 'uploads/tidy/caps/a.jpg');
    expect(removed.code).toBe(0);
    expect(removed.out).toMatch(/^removed uploads\/tidy\/caps\/a\.jpg\n/);
    expect((await cli('remove', '--project', 'tidy', 'caps/a.jpg')).code).toBe(1);
  });

  it('refuses files that are not photos or not in a label folder, and uploads the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'headstart-cli-upload-'));
    mkdirSync(join(dir, 'hats'));
    writeFileSync(join(dir, 'hats', 'notes.jpg'), 'not a photo');
    writeFileSync(join(dir, 'loose.jpg'), 'no label');
    const r = JSON.parse((await cli('upload', dir, '--project', 'shop', '--json')).out);
    expect(r.uploaded).toEqual([]);
    expect(r.refused.map((x: { code: string }) => x.code).sort()).toEqual(['no_label', 'unsupported_format']);
  });

  it('imports a tfjs layers model as a backbone and lists it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'headstart-cli-model-'));
    const input = tfl.input({ shape: [32, 32, 3] });
    const conv = tfl.layers
      .conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv' })
      .apply(input);
    const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(conv);
    const relu = tfl.layers.reLU({ maxValue: 6, name: 'relu' }).apply(bn) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: relu });
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        writeFileSync(join(dir, 'weights.bin'), new Uint8Array(a.weightData as ArrayBuffer));
        writeFileSync(
          join(dir, 'model.json'),
          JSON.stringify({
            modelTopology: a.modelTopology,
            weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
          }),
        );
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const r = await cli(
      'backbone',
      'import',
      join(dir, 'model.json'),
      '--id',
      'tiny-test',
      '--cut',
      'relu',
      '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).cosineMean).toBeGreaterThan(0.99);
    const listed = JSON.parse((await cli('backbone', 'list', '--json')).out);
    expect(listed.map((m: { id: string }) => m.id)).toContain('tiny-test');
    const missing = await cli('backbone', 'import', join(dir, 'nope.json'), '--id', 'x', '--cut', 'relu');
    expect(missing.code).toBe(1);
  });
});
