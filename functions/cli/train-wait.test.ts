import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEnv } from '../../shared/config.js';
import { layout } from '../../shared/layout/index.js';
import { readRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import type { TrainingState } from '../../shared/pipeline/train-project.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { requestTraining, type WaitClock } from './project-commands.js';

/** A clock whose sleep advances time and lets the test act on the store at given (fake) seconds. */
function scriptedClock(script: Map<number, () => Promise<void>>): WaitClock {
  let t = 0;
  return {
    now: () => t,
    async sleep(ms) {
      t += ms;
      for (const [at, act] of script) {
        if (at * 1000 <= t) {
          script.delete(at);
          await act();
        }
      }
    },
  };
}

function fresh(): { store: ObjectStore; target: Parameters<typeof requestTraining>[0] } {
  const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-train-wait-')) });
  return { store, target: { store, api: 'http://127.0.0.1:9', local: true, env: readEnv({}) } };
}

async function writeState(store: ObjectStore, state: Partial<TrainingState>): Promise<void> {
  const full = { project: 'p', state: 'training', updatedAt: new Date().toISOString(), ...state };
  await store.put(layout.trainingState('p'), JSON.stringify(full), { contentType: 'application/json' });
}

const progress = (step: number) => ({ phase: 'fine-tuning', step, of: 15, elapsedSeconds: step * 300 });

describe('train --wait', () => {
  it('keeps waiting past its timeout while the training reports progress, then answers its outcome', async () => {
    const { store, target } = fresh();
    const script = new Map<number, () => Promise<void>>();
    // A training 40 minutes long with a 15-minute give-up window: progress every 5 minutes.
    for (let minute = 5; minute < 40; minute += 5)
      script.set(minute * 60, () => writeState(store, { progress: progress(minute / 5) }));
    script.set(40 * 60, async () => {
      const req = await readRetrainRequest(store, 'p');
      await writeState(store, {
        state: 'idle',
        consumedSequence: req!.sequence,
        lastOutcome: { status: 'failed', message: 'out of memory', at: new Date().toISOString() },
      });
    });
    const lines: string[] = [];
    const outcome = await requestTraining(target, 'p', {
      wait: true,
      force: false,
      pollMs: 10_000,
      clock: scriptedClock(script),
      onProgress: ({ line }) => lines.push(line),
    });
    expect(outcome).toMatchObject({ status: 'failed', message: 'out of memory' });
    expect(lines).toHaveLength(7);
    expect(new Set(lines).size).toBe(7);
  });

  it('gives up after the timeout with no training, saying that nothing picked the request up', async () => {
    const { target } = fresh();
    const waiting = requestTraining(target, 'p', {
      wait: true,
      force: false,
      timeoutSeconds: 60,
      pollMs: 1000,
      clock: scriptedClock(new Map()),
    });
    await expect(waiting).rejects.toThrow(
      /no training picked up the request within 60 s: is `npm start` running on this home\?/,
    );
  });

  it('gives up on a training that stopped reporting progress, saying it may still finish', async () => {
    const { store, target } = fresh();
    const script = new Map([[30, () => writeState(store, { progress: progress(1) })]]);
    const waiting = requestTraining(target, 'p', {
      wait: true,
      force: false,
      timeoutSeconds: 60,
      pollMs: 1000,
      clock: scriptedClock(script),
    });
    await expect(waiting).rejects.toThrow(/reported no progress for 60 s and has not finished; it may still/);
  });
});
