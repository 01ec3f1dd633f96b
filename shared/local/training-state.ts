import { layout, parseTrainingKey } from '../layout/index.js';
import { recordFailure } from '../pipeline/train-outcome.js';
import { readTrainingState, type TrainingState } from '../pipeline/train-project.js';
import type { ObjectStore } from '../store/index.js';
import { removeOwnLease } from './training-leases.js';

/**
 * After the training thread was cut off: removes the leases this process held and marks their projects idle
 * again, so the next start (or another stack on the bucket) trains them without waiting for the lease to expire.
 * The request stays unconsumed, so that training runs again.
 */
export async function abandonTrainings(
  store: ObjectStore,
  owner: string,
  log: (line: string) => void,
): Promise<string[]> {
  const projects: string[] = [];
  for await (const o of store.list(layout.trainingPrefix)) {
    const k = parseTrainingKey(o.key);
    if (k?.file === 'lease') projects.push(k.project);
  }
  const abandoned: string[] = [];
  for (const project of projects) {
    if (!(await removeOwnLease(store, project, owner))) continue;
    abandoned.push(project);
    const state = await readTrainingState(store, project);
    if (state?.state === 'training') {
      const now = new Date();
      const next: TrainingState = {
        ...state,
        state: 'idle',
        updatedAt: now.toISOString(),
        lastOutcome: recordFailure('interrupted', 'the stack stopped during the training', now),
      };
      await store.put(layout.trainingState(project), JSON.stringify(next), {
        contentType: 'application/json',
      });
    }
    log(`stopped the training of ${project}; it runs again at the next start`);
  }
  return abandoned;
}
