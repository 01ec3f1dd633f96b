import { beforeAll, describe, expect, it } from 'vitest';
import {
  aPhoto,
  type EdgeFixture,
  edgeFixture,
  instrument,
  manualClock,
  testApp,
} from '../../test/support/edge-test-support.js';
import {
  type FineTunedTestTop,
  fineTunedTestTop,
  publishFineTunedModel,
} from '../../test/support/publish-finetuned-model.js';
import { overwriteVersionFile, publishTestModel } from '../../test/support/publish-test-model.js';
import { type Backbone, BackboneNotFoundError, readDefaultBackboneId } from '../backbone/index.js';
import { loadTop, parseTop, topFiles, trunkBackboneId } from '../finetune/index.js';
import { decodeImage } from '../image/index.js';
import { layout } from '../layout/index.js';
import { flipPointer, HEAD_BIN, HEAD_JSON, readPointer, TOP_JSON, TOP_WEIGHTS } from '../models/index.js';
import type { ObjectStore } from '../store/index.js';
import { tf } from '../tf/tf-runtime.js';
import type { EdgeApp } from './app.js';
import { silentLogger } from './edge-logger.js';
import { createEdgeRuntime } from './edge-runtime.js';

const P = 'clothing';
let fx: EdgeFixture;

beforeAll(async () => {
  fx = await edgeFixture();
});

const jpeg = (): RequestInit => ({
  method: 'POST',
  body: aPhoto(),
  headers: { 'content-type': 'image/jpeg' },
});

async function predictVersion(app: { request: (p: string, i: RequestInit) => Response | Promise<Response> }) {
  const res = await app.request(`/v1/projects/${P}/predict`, jpeg());
  const body = (await res.json()) as { model?: { version: string }; error?: { code: string } };
  return { status: res.status, version: body.model?.version, code: body.error?.code };
}

/** A fresh store with version v1 of the project current. */
async function storeWithV1(): Promise<ObjectStore> {
  const store = await fx.newStore();
  await publishTestModel(store, P, fx.trained, { version: 'v1' });
  return store;
}

describe('new versions', () => {
  it('are picked up after the TTL, not before, without a redeploy', async () => {
    const store = await storeWithV1();
    const clock = manualClock();
    const { app } = testApp(fx, store, { clock: clock.now, pointerTtlSeconds: 30 });
    expect(await predictVersion(app)).toMatchObject({ status: 200, version: 'v1' });
    await publishTestModel(store, P, fx.trained, { version: 'v2' });
    clock.advance(29_000);
    expect((await predictVersion(app)).version).toBe('v1');
    clock.advance(1_000);
    expect((await predictVersion(app)).version).toBe('v2');
    expect(
      ((await (await app.request(`/v1/projects/${P}/model`)).json()) as { version: string }).version,
    ).toBe('v2');
  });

  it('cost one conditional GET per TTL and no download while the pointer is unchanged', async () => {
    const counted = instrument(await storeWithV1());
    const clock = manualClock();
    const { app } = testApp(fx, counted.store, { clock: clock.now, pointerTtlSeconds: 30 });
    await predictVersion(app);
    expect(counted.gets).toEqual(
      expect.arrayContaining([layout.currentPointer(P), layout.versionFile(P, 'v1', HEAD_BIN)]),
    );
    counted.reset();
    for (let i = 0; i < 5; i++) await predictVersion(app);
    expect(counted.calls).toMatchObject({ get: 0, getIfChanged: 0, head: 0, list: 0 });
    clock.advance(30_000);
    for (let i = 0; i < 5; i++) await predictVersion(app);
    expect(counted.calls).toMatchObject({ get: 0, getIfChanged: 1, head: 0, list: 0 });
  });

  it('share one load when many first requests arrive together', async () => {
    const counted = instrument(await storeWithV1());
    const { app } = testApp(fx, counted.store);
    const results = await Promise.all(Array.from({ length: 12 }, () => predictVersion(app)));
    expect(results.every((r) => r.status === 200 && r.version === 'v1')).toBe(true);
    expect(counted.gets.filter((k) => k.endsWith(HEAD_BIN))).toHaveLength(1);
    expect(
      counted.calls.getIfChanged + counted.gets.filter((k) => k === layout.currentPointer(P)).length,
    ).toBe(1);
  });
});

describe('a version that cannot be served', () => {
  it('whose head fails its sha256 never replaces the working one, and is not downloaded again', async () => {
    const counted = instrument(await storeWithV1());
    const clock = manualClock();
    const { app } = testApp(fx, counted.store, { clock: clock.now });
    expect((await predictVersion(app)).version).toBe('v1');
    await publishTestModel(counted.store, P, fx.trained, { version: 'v2' });
    await overwriteVersionFile(counted.store, P, 'v2', HEAD_BIN, new Uint8Array(64));
    clock.advance(31_000);
    expect(await predictVersion(app)).toMatchObject({ status: 200, version: 'v1' });
    const info = (await (await app.request(`/v1/projects/${P}/model`)).json()) as {
      version: string;
      refusedVersion: { version: string; code: string; message: string };
    };
    expect(info.version).toBe('v1');
    expect(info.refusedVersion).toMatchObject({ version: 'v2', code: 'model_invalid' });
    expect(info.refusedVersion.message).toMatch(/sha256/);
    counted.reset();
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v1');
    expect(counted.gets).toEqual([]);
    expect(counted.calls.getIfChanged).toBe(1);
  });

  it('whose head does not load never replaces the working one; a later good version does', async () => {
    const store = await storeWithV1();
    const clock = manualClock();
    const { app } = testApp(fx, store, { clock: clock.now });
    expect((await predictVersion(app)).version).toBe('v1');
    await publishTestModel(store, P, fx.trained, {
      version: 'v2',
      files: { [HEAD_JSON]: JSON.stringify({ modelTopology: { nonsense: true }, weightsManifest: [] }) },
    });
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v1');
    await publishTestModel(store, P, fx.trained, { version: 'v3' });
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v3');
  });

  it('trained on another backbone is refused: 503 naming both backbones when nothing else is loaded', async () => {
    const store = await fx.newStore();
    await publishTestModel(store, P, fx.trained, {
      version: 'v1',
      manifest: (m) => {
        m.backbone = { ...m.backbone, id: 'some-other-backbone', weightsSha256: 'f'.repeat(64) };
      },
    });
    const { app } = testApp(fx, store);
    const res = await app.request(`/v1/projects/${P}/predict`, jpeg());
    expect(res.status).toBe(503);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('backbone_mismatch');
    expect(error.message).toContain('some-other-backbone');
    expect(error.message).toContain(fx.pkg.manifest.id);
  });

  it('whose pointer names a manifest other than the one promoted is refused', async () => {
    const store = await storeWithV1();
    const clock = manualClock();
    const { app } = testApp(fx, store, { clock: clock.now });
    expect((await predictVersion(app)).version).toBe('v1');
    await publishTestModel(store, P, fx.trained, { version: 'v2' });
    const manifestKey = layout.versionFile(P, 'v2', 'manifest.json');
    const manifest = JSON.parse(new TextDecoder().decode((await store.get(manifestKey))!.body));
    await store.put(manifestKey, JSON.stringify({ ...manifest, labels: [...manifest.labels].reverse() }));
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v1');
  });
});

describe('when the store is unreachable', () => {
  it('the last good model keeps serving, and the next check after recovery picks up news', async () => {
    const flaky = instrument(await storeWithV1());
    const clock = manualClock();
    const { app } = testApp(fx, flaky.store, { clock: clock.now });
    expect((await predictVersion(app)).version).toBe('v1');
    await publishTestModel(flaky.store, P, fx.trained, { version: 'v2' });
    flaky.down = true;
    clock.advance(31_000);
    for (let i = 0; i < 3; i++)
      expect(await predictVersion(app)).toMatchObject({ status: 200, version: 'v1' });
    expect(flaky.calls.getIfChanged).toBe(1);
    flaky.down = false;
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v2');
  });
});

/** The fixture backbone, but extract waits for `open()` while `hold` is set. */
function gatedBackbone(inner: Backbone) {
  let release: () => void = () => {};
  let entered: () => void = () => {};
  const state = {
    hold: false,
    entered: new Promise<void>((r) => {
      entered = r;
    }),
    open: () => release(),
    backbone: {
      manifest: inner.manifest,
      inputSize: inner.inputSize,
      featureDim: inner.featureDim,
      extract: async (images: readonly Uint8Array[]) => {
        if (state.hold) {
          state.hold = false;
          const opened = new Promise<void>((r) => {
            release = r;
          });
          entered();
          await opened;
        }
        return inner.extract(images);
      },
      extractTensor: (b: Parameters<Backbone['extractTensor']>[0]) => inner.extractTensor(b),
      dispose: () => {},
    } satisfies Backbone,
  };
  return state;
}

describe('requests in flight', () => {
  it('finish on the model they started with; its head is freed once they are done', async () => {
    const store = await storeWithV1();
    const clock = manualClock();
    const gate = gatedBackbone(fx.backbone);
    const { app, models } = testApp(fx, store, { clock: clock.now }, gate.backbone);
    expect((await predictVersion(app)).version).toBe('v1');
    expect(models.stats().liveHeads).toBe(1);

    gate.hold = true;
    const slow = predictVersion(app);
    await gate.entered;
    await publishTestModel(store, P, fx.trained, { version: 'v2' });
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v2');
    // v1 is retired but the slow request still holds it.
    expect(models.stats().liveHeads).toBe(2);
    gate.open();
    expect(await slow).toMatchObject({ status: 200, version: 'v1' });
    expect(models.stats().liveHeads).toBe(1);
  });
});

describe('memory', () => {
  it('keeps at most headCacheSize heads, disposing the least recently used', async () => {
    const store = await fx.newStore();
    for (const p of ['p1', 'p2', 'p3']) await publishTestModel(store, p, fx.trained, { version: 'v1' });
    const { app, models } = testApp(fx, store, { headCacheSize: 2 });
    const tensorsBefore = tf.memory().numTensors;
    const hit = async (p: string) => (await app.request(`/v1/projects/${p}/predict`, jpeg())).status;
    expect(await hit('p1')).toBe(200);
    expect(await hit('p2')).toBe(200);
    const perHead = (tf.memory().numTensors - tensorsBefore) / 2;
    expect(perHead).toBeGreaterThan(0);
    expect(await hit('p1')).toBe(200);
    expect(await hit('p3')).toBe(200); // evicts p2, the least recently used
    expect(models.stats()).toMatchObject({ projects: 2, liveHeads: 2 });
    expect(tf.memory().numTensors - tensorsBefore).toBe(2 * perHead);
    expect(await hit('p2')).toBe(200);
    models.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('does not grow tf.memory().numTensors over 50 predictions', async () => {
    const store = await storeWithV1();
    const { app } = testApp(fx, store);
    expect((await predictVersion(app)).status).toBe(200);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) expect((await predictVersion(app)).status).toBe(200);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops serving a project whose pointer was removed', async () => {
    const store = await storeWithV1();
    const clock = manualClock();
    const { app, models } = testApp(fx, store, { clock: clock.now });
    expect((await predictVersion(app)).version).toBe('v1');
    await store.delete(layout.currentPointer(P));
    clock.advance(31_000);
    expect(await predictVersion(app)).toMatchObject({ status: 404 });
    expect(models.stats().liveHeads).toBe(0);
    const current = await readPointer(store, P);
    expect(current).toBeUndefined();
    await flipPointer(store, P, 'v1', 'rollback', undefined);
    clock.advance(31_000);
    expect((await predictVersion(app)).version).toBe('v1');
  });
});

describe('fine-tuned versions', () => {
  const T = 'tuned';
  let ft: FineTunedTestTop;
  /** Serves the shared trunk by id, counting loads; `fail` makes the next loads fail as a missing one would. */
  const trunkLoader = () => {
    const state = {
      loads: 0,
      fail: false,
      load: async (id: string): Promise<Backbone> => {
        state.loads++;
        if (state.fail || id !== ft.trunk.manifest.id) {
          throw new BackboneNotFoundError(`backbone '${id}' is not in the test store`);
        }
        return ft.trunk;
      },
    };
    return state;
  };
  const predictTuned = async (app: EdgeApp, project = T) => {
    const res = await app.request(`/v1/projects/${project}/predict?topK=10`, jpeg());
    const body = (await res.json()) as {
      model?: { version: string; backbone: string };
      predictions?: { label: string; score: number }[];
      error?: { code: string; message: string };
    };
    return { status: res.status, version: body.model?.version, backbone: body.model?.backbone, ...body };
  };
  const modelInfo = async (app: EdgeApp, project = T) =>
    (await (await app.request(`/v1/projects/${project}/model`)).json()) as {
      version: string;
      refusedVersion?: { version: string; code: string; message: string };
    };

  beforeAll(async () => {
    ft = await fineTunedTestTop();
  });

  it('are served on their trunk, loaded from the store on first use, as trunk.extract then top.predict', async () => {
    const store = await fx.newStore();
    const { manifest } = await publishFineTunedModel(store, T, ft, { version: 'f1' });
    expect(manifest.backbone.id).toBe(trunkBackboneId());
    expect(await readDefaultBackboneId(store)).toBe(fx.pkg.manifest.id);
    // The runtime's own wiring: the default backbone as given, the trunk read from the store by id.
    const { app, models } = createEdgeRuntime(
      { store: { kind: 'fs', root: 'unused' }, logLevel: 'error', app: { requireKeys: false } },
      { store, backbone: async () => fx.backbone, logger: silentLogger },
    );
    const body = await predictTuned(app);
    expect(body).toMatchObject({ status: 200, version: 'f1', backbone: trunkBackboneId() });
    expect(models.stats().extraBackbones).toEqual([trunkBackboneId()]);
    const predictions = body.predictions!;
    expect(predictions.map((p) => p.label).sort()).toEqual([...manifest.labels].sort());
    expect(predictions.reduce((sum, p) => sum + p.score, 0)).toBeCloseTo(1, 5);

    const { json, weights } = topFiles(ft.result.top);
    const top = loadTop(parseTop(json, weights));
    const { inputSize, manifest: trunkManifest } = ft.trunk;
    const pixels = await decodeImage(aPhoto(), {
      size: inputSize,
      policy: trunkManifest.preprocessing.resize,
    });
    const [features] = await ft.trunk.extract([pixels.data]);
    const direct = top.predict(features!, 1);
    top.dispose();
    for (const p of predictions) {
      expect(p.score).toBeCloseTo(direct[top.labels.indexOf(p.label)]!, 5);
    }
    const info = (await (await app.request(`/v1/projects/${T}/model`)).json()) as {
      head: { format: string };
      backbone: { id: string };
    };
    expect(info.head.format).toBe('headstart-finetuned-top');
    expect(info.backbone.id).toBe(trunkBackboneId());
  });

  it('and versions on the default backbone are served side by side by one cache, the trunk loaded once', async () => {
    const store = await fx.newStore();
    await publishTestModel(store, P, fx.trained, { version: 'v1' });
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    await publishFineTunedModel(store, 'tuned-too', ft, { version: 'g1' });
    const loader = trunkLoader();
    const { app, models } = testApp(fx, store, {}, fx.backbone, loader.load);
    const first = await Promise.all([
      predictTuned(app, T),
      predictTuned(app, 'tuned-too'),
      predictTuned(app, P),
    ]);
    expect(first.map((r) => [r.status, r.version, r.backbone])).toEqual([
      [200, 'f1', trunkBackboneId()],
      [200, 'g1', trunkBackboneId()],
      [200, 'v1', fx.pkg.manifest.id],
    ]);
    for (let i = 0; i < 3; i++) {
      expect((await predictTuned(app, P)).version).toBe('v1');
      expect((await predictTuned(app, T)).version).toBe('f1');
    }
    expect(loader.loads).toBe(1);
    expect(models.stats()).toMatchObject({ projects: 3, liveHeads: 3, extraBackbones: [trunkBackboneId()] });
  });

  it('whose top runs on another trunk than the manifest names are refused; the previous version stays', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    const clock = manualClock();
    const loader = trunkLoader();
    const { app } = testApp(fx, store, { clock: clock.now }, fx.backbone, loader.load);
    expect((await predictTuned(app)).version).toBe('f1');
    const otherTrunk = 'mnv2-nsfwjs.block_11_add.224.i8c.spatial';
    const descriptor = {
      ...ft.result.top.descriptor,
      trunk: { ...ft.result.top.descriptor.trunk, id: otherTrunk },
    };
    await publishFineTunedModel(store, T, ft, {
      version: 'f2',
      files: { [TOP_JSON]: JSON.stringify(descriptor) },
    });
    clock.advance(31_000);
    expect(await predictTuned(app)).toMatchObject({ status: 200, version: 'f1' });
    const { version, refusedVersion } = await modelInfo(app);
    expect(version).toBe('f1');
    expect(refusedVersion).toMatchObject({ version: 'f2', code: 'model_invalid' });
    expect(refusedVersion!.message).toContain(otherTrunk);
    expect(refusedVersion!.message).toContain(trunkBackboneId());
  });

  it('whose top.bin fails its sha256, against the manifest or the top, are refused', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    const clock = manualClock();
    const { app } = testApp(fx, store, { clock: clock.now }, fx.backbone, trunkLoader().load);
    expect((await predictTuned(app)).version).toBe('f1');

    await publishFineTunedModel(store, T, ft, { version: 'f2' });
    await overwriteVersionFile(store, T, 'f2', TOP_WEIGHTS, new Uint8Array(64));
    clock.advance(31_000);
    expect((await predictTuned(app)).version).toBe('f1');
    let info = await modelInfo(app);
    expect(info.refusedVersion).toMatchObject({ version: 'f2', code: 'model_invalid' });
    expect(info.refusedVersion!.message).toMatch(/top\.bin has sha256/);

    // Hashed into the manifest as written, but not the weights top.json was serialized with.
    const flipped = ft.result.top.weights.slice();
    flipped[0] = (flipped[0]! + 1) % 256;
    await publishFineTunedModel(store, T, ft, { version: 'f3', files: { [TOP_WEIGHTS]: flipped } });
    clock.advance(31_000);
    expect((await predictTuned(app)).version).toBe('f1');
    info = await modelInfo(app);
    expect(info.refusedVersion).toMatchObject({ version: 'f3', code: 'model_invalid' });
    expect(info.refusedVersion!.message).toMatch(/fine-tuned top .* invalid: top\.bin has sha256/);
  });

  it('on a trunk whose weights differ from the manifest are refused as backbone_mismatch', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, {
      version: 'f1',
      manifest: (m) => {
        m.backbone = { ...m.backbone, weightsSha256: 'f'.repeat(64) };
      },
    });
    const { app } = testApp(fx, store, {}, fx.backbone, trunkLoader().load);
    const res = await predictTuned(app);
    expect(res.status).toBe(503);
    expect(res.error?.code).toBe('backbone_mismatch');
    expect(res.error?.message).toContain(trunkBackboneId());
  });

  it('are refused as backbone_mismatch by an edge that loads no backbone but the default', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    const { app } = testApp(fx, store);
    const res = await predictTuned(app);
    expect(res.status).toBe(503);
    expect(res.error?.code).toBe('backbone_mismatch');
    expect(res.error?.message).toContain(trunkBackboneId());
  });

  it('wait with a 503 backbone_unavailable while their trunk cannot be loaded, and are served once it can', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    const clock = manualClock();
    const loader = trunkLoader();
    loader.fail = true;
    const { app } = testApp(fx, store, { clock: clock.now }, fx.backbone, loader.load);
    const res = await predictTuned(app);
    expect(res.status).toBe(503);
    expect(res.error?.code).toBe('backbone_unavailable');
    expect(res.error?.message).toContain(trunkBackboneId());
    loader.fail = false;
    clock.advance(2_000); // the cache's default retry for a project with nothing loaded
    expect(await predictTuned(app)).toMatchObject({ status: 200, version: 'f1' });
    expect(loader.loads).toBe(2);
  });

  it('do not grow tf.memory().numTensors as leases are released and versions replaced', async () => {
    const store = await fx.newStore();
    await publishFineTunedModel(store, T, ft, { version: 'f1' });
    await publishTestModel(store, P, fx.trained, { version: 'v1' });
    const clock = manualClock();
    const { app, models } = testApp(fx, store, { clock: clock.now }, fx.backbone, trunkLoader().load);
    const before = tf.memory().numTensors;
    expect((await predictTuned(app)).version).toBe('f1');
    expect((await predictTuned(app, P)).version).toBe('v1');
    const serving = tf.memory().numTensors;
    for (const version of ['f2', 'f3']) {
      await publishFineTunedModel(store, T, ft, { version });
      clock.advance(31_000);
      expect((await predictTuned(app)).version).toBe(version);
      for (let i = 0; i < 5; i++) expect((await predictTuned(app)).status).toBe(200);
      expect((await predictTuned(app, P)).status).toBe(200);
    }
    expect(models.stats().liveHeads).toBe(2);
    expect(tf.memory().numTensors).toBe(serving);
    models.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
