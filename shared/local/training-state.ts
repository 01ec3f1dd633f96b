import { layout } from '../models/model-layout.js';
import { readTrainingState } from '../pipeline/train-project.js';
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
  for await (const o of store.list('training/')) {
    const m = /^training\/([^/]+)\/lease\.json$/.exec(o.key);
    if (m) projects.push(m[1]!);
  }
  const abandoned: string[] = [];
  for (const project of projects) {
    if (!(await removeOwnLease(store, project, owner))) continue;
    abandoned.push(project);
    const state = await readTrainingState(store, project);
    if (state?.state === 'training') {
      await store.put(
        layout.trainingState(project),
        JSON.stringify({
          ...state,
          state: 'idle',
          updatedAt: new Date().toISOString(),
          lastOutcome: {
            status: 'interrupted',
            message: 'the stack stopped during the training',
            at: new Date().toISOString(),
          },
        }),
        { contentType: 'application/json' },
      );
    }
    log(`stopped the training of ${project}; it runs again at the next start`);
  }
  return abandoned;
}
