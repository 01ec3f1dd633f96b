import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../layout/index.js';
import { createFsStore } from '../store/index.js';
import { readRetrainRequest, writeRetrainRequest } from './retrain-requests.js';

const fsStore = () => createFsStore({ root: mkdtempSync(join(tmpdir(), 'hs-retrain-requests-')) });
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

describe('retrain requests', () => {
  it("keeps a pending request's immediate and force when an upload's request comes after it", async () => {
    const store = fsStore();
    await writeRetrainRequest(store, 'p', { now: at(0), immediate: true, force: true });
    const later = await writeRetrainRequest(store, 'p', { now: at(1000) });
    expect(later).toMatchObject({ immediate: true, force: true, requestedAt: at(1000).toISOString() });
    expect(await readRetrainRequest(store, 'p')).toEqual(later);
  });

  it('drops the flags once a training consumed the request that carried them', async () => {
    const store = fsStore();
    const first = await writeRetrainRequest(store, 'p', { now: at(0), immediate: true });
    await store.put(
      layout.trainingState('p'),
      JSON.stringify({
        project: 'p',
        state: 'idle',
        consumedSequence: first.sequence,
        updatedAt: at(500).toISOString(),
      }),
    );
    const later = await writeRetrainRequest(store, 'p', { now: at(1000) });
    expect(later.immediate).toBeUndefined();
    expect(later.force).toBeUndefined();
  });

  it('loses no flag when two requests are written at once', async () => {
    const store = fsStore();
    await Promise.all([
      writeRetrainRequest(store, 'p', { now: at(0), immediate: true }),
      writeRetrainRequest(store, 'p', { now: at(1) }),
      writeRetrainRequest(store, 'p', { now: at(2) }),
    ]);
    expect((await readRetrainRequest(store, 'p'))?.immediate).toBe(true);
  });
});
