// Shared set-up for the edge tests: a real backbone, a head trained on the fixture photos, fresh FS stores,
// and store wrappers that count or fail calls (real behaviour around a real store, not mocks).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backbone, BackbonePackage } from '../../shared/backbone/index.js';
import { createEdgeApp, type EdgeApp, type EdgeAppConfig } from '../../shared/http/app.js';
import {
  type BackboneByIdProvider,
  createModelCache,
  type ModelCache,
} from '../../shared/http/model-cache.js';
import type { ReviewRecorder } from '../../shared/http/review-recorder.js';
import { createFsStore, type ObjectStore, StoreUnavailableError } from '../../shared/store/index.js';
import { readTextBackbone } from '../../shared/text/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { clothingMini } from './fixtures.js';
import {
  buildTestBackbone,
  installBackbone,
  type TrainedTestHead,
  trainTestHead,
} from './publish-test-model.js';

export interface EdgeFixture {
  pkg: BackbonePackage;
  backbone: Backbone;
  trained: TrainedTestHead;
  /** A new FS store in a temp dir with the backbone installed as the default. */
  newStore(): Promise<ObjectStore>;
}

let memo: Promise<EdgeFixture> | undefined;

/** Built once per test file (module state is per file under vitest's forks pool). */
export function edgeFixture(): Promise<EdgeFixture> {
  memo ??= (async () => {
    await initTf();
    const { pkg, backbone } = await buildTestBackbone();
    const trained = await trainTestHead(backbone);
    return {
      pkg,
      backbone,
      trained,
      async newStore() {
        const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-edge-')) });
        await installBackbone(store, pkg);
        return store;
      },
    };
  })();
  return memo;
}

export type StoreMethod = 'get' | 'getIfChanged' | 'head' | 'put' | 'putTags' | 'getTags' | 'delete' | 'list';

export interface InstrumentedStore {
  store: ObjectStore;
  /** Calls per method, and the keys passed to get (bodies downloaded). */
  calls: Record<StoreMethod, number>;
  gets: string[];
  /** While true every call fails as an unreachable store would. */
  down: boolean;
  reset(): void;
}

/** Wraps a real store to count calls and to simulate an outage. */
export function instrument(inner: ObjectStore): InstrumentedStore {
  const state: InstrumentedStore = {
    calls: { get: 0, getIfChanged: 0, head: 0, put: 0, putTags: 0, getTags: 0, delete: 0, list: 0 },
    gets: [],
    down: false,
    reset() {
      for (const k of Object.keys(state.calls) as StoreMethod[]) state.calls[k] = 0;
      state.gets.length = 0;
    },
    store: undefined as unknown as ObjectStore,
  };
  const check = (method: StoreMethod) => {
    state.calls[method]++;
    if (state.down) throw new StoreUnavailableError(`${inner.description} is unreachable (simulated)`);
  };
  const guard =
    <M extends StoreMethod>(method: M) =>
    (...args: Parameters<ObjectStore[M]>) => {
      check(method);
      if (method === 'get') state.gets.push(args[0] as string);
      return (inner[method] as (...a: Parameters<ObjectStore[M]>) => ReturnType<ObjectStore[M]>)(...args);
    };
  // Async methods reject (rather than throw) while the store is down, as a real client's calls do.
  const guardAsync =
    <M extends Exclude<StoreMethod, 'list'>>(method: M) =>
    async (...args: Parameters<ObjectStore[M]>) =>
      guard(method)(...args);
  state.store = {
    description: inner.description,
    get: guardAsync('get'),
    getIfChanged: guardAsync('getIfChanged'),
    head: guardAsync('head'),
    put: guardAsync('put'),
    putTags: guardAsync('putTags'),
    getTags: guardAsync('getTags'),
    delete: guardAsync('delete'),
    list: guard('list'),
  } as unknown as ObjectStore;
  return state;
}

/** A clock tests move by hand. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

export interface TestApp {
  app: EdgeApp;
  models: ModelCache;
  reviews: ReviewRecorder;
}

/**
 * An app over `store` serving the fixture's backbone, keys off unless asked for; other backbones (fine-tuned
 * versions' trunks) only through `backboneById`, when given.
 */
export function testApp(
  fixture: EdgeFixture,
  store: ObjectStore,
  config: Partial<EdgeAppConfig> = {},
  backbone: Backbone = fixture.backbone,
  backboneById?: BackboneByIdProvider,
): TestApp {
  const full = { requireKeys: false, ...config };
  const models = createModelCache({
    store,
    backbone: async () => backbone,
    textBackbone: (id) => readTextBackbone(store, id),
    ...(backboneById ? { backboneById } : {}),
    ...(full.pointerTtlSeconds !== undefined ? { pointerTtlSeconds: full.pointerTtlSeconds } : {}),
    ...(full.settingsTtlSeconds !== undefined ? { settingsTtlSeconds: full.settingsTtlSeconds } : {}),
    ...(full.headCacheSize !== undefined ? { headCacheSize: full.headCacheSize } : {}),
    ...(full.clock ? { clock: full.clock } : {}),
  });
  const { app, reviews } = createEdgeApp({ store, backbone: async () => backbone, models, config: full });
  return { app, models, reviews };
}

/** The eval fixture photos, and one JPEG to send. */
export const evalPhotos = () => clothingMini('eval');
export const aPhoto = () => clothingMini('eval')[0]!.bytes;
