import { hostname } from 'node:os';
import { z } from 'zod';
import { layout, parseTrainingKey } from '../layout/index.js';
import { type ObjectStore, parseJson } from '../store/index.js';
import { isAlive } from './stack-lock.js';

/**
 * Local trainers name their leases `local-<host>-<pid>`, so a stack starting on this host can tell a lease left
 * by a killed stack (its pid is gone) from one a live stack holds, on this home or on another home sharing the
 * bucket. Leases of other hosts, and of cloud trainers, are left to expire.
 */
export function localTrainerOwner(pid = process.pid): string {
  return `local-${hostname()}-${pid}`;
}

const leaseSchema = z.object({ owner: z.string() }).passthrough();

/** Whether a lease owner is provably dead: a local trainer of this host whose process no longer runs. */
export function ownerIsDead(owner: string, options: { legacyIsLocal: boolean }): boolean {
  const current = /^local-(.+)-(\d+)$/.exec(owner);
  if (current) return current[1] === hostname() && !isAlive(Number(current[2]));
  // Older stacks wrote `local-<pid>` without a host; only a store on this machine's disk can be judged.
  const legacy = /^local-(\d+)$/.exec(owner);
  return legacy !== null && options.legacyIsLocal && !isAlive(Number(legacy[1]));
}

/** Removes the leases of dead local trainers; returns the keys removed. */
export async function removeDeadLeases(
  store: ObjectStore,
  options: { legacyIsLocal: boolean; log?: (line: string) => void },
): Promise<string[]> {
  const removed: string[] = [];
  for await (const o of store.list(layout.trainingPrefix)) {
    if (parseTrainingKey(o.key)?.file !== 'lease') continue;
    const held = await store.get(o.key);
    if (!held) continue;
    let owner: string;
    try {
      owner = parseJson(held.body, leaseSchema).owner;
    } catch {
      continue; // unreadable: the trainer's own expiry decides
    }
    if (!ownerIsDead(owner, options)) continue;
    await store.delete(o.key);
    removed.push(o.key);
    options.log?.(`removed the training lease ${o.key} of ${owner}, which no longer runs`);
  }
  return removed;
}

/** Removes a project's lease if it is still this owner's (a training this process cut short); true if removed. */
export async function removeOwnLease(store: ObjectStore, project: string, owner: string): Promise<boolean> {
  const key = layout.trainingLease(project);
  const held = await store.get(key);
  if (!held) return false;
  try {
    if (parseJson(held.body, leaseSchema).owner !== owner) return false;
  } catch {
    return false;
  }
  await store.delete(key);
  return true;
}
