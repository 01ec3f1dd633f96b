import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { errorKind, HeadstartError } from '../headstart-error.js';

/**
 * One local stack per home. The stack writes `<home>/stack.json` (its pid, host, store and API URL) when it starts
 * and removes it when it stops; a second `npm start` on the same home refuses while that pid is alive, and the CLI
 * reads it to know whether anything will pick up a request (`train --wait`) at all. A file left by a killed stack
 * names a dead pid and is simply taken over.
 */
const lockSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  startedAt: z.string(),
  store: z.string(),
  url: z.string().optional(),
});
export type LiveStack = z.infer<typeof lockSchema>;

export class StackLockError extends errorKind(HeadstartError, {
  name: 'StackLockError',
  code: 'stack_running',
}) {}

export interface StackLock {
  readonly info: LiveStack;
  /** Records the API's URL once it listens, for the CLI. */
  update(patch: { url: string }): void;
  /** Removes the lock file if it is still ours. */
  release(): void;
}

const lockFile = (home: string) => join(home, 'stack.json');

/** Whether a process with this pid exists on this machine (EPERM means it exists but is not ours). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(home: string): LiveStack | undefined {
  try {
    return lockSchema.parse(JSON.parse(readFileSync(lockFile(home), 'utf8')));
  } catch {
    return undefined; // absent, or half-written by a writer that died: nobody holds it
  }
}

/** The stack that holds this home, if its process is alive on this machine. */
export function readLiveStack(options: { home: string }): LiveStack | undefined {
  const held = readLock(options.home);
  if (!held) return undefined;
  // A lock from another host (a home on a shared disk) cannot be checked: assume it is alive.
  return held.host !== hostname() || isAlive(held.pid) ? held : undefined;
}

function writeAtomically(home: string, info: LiveStack): void {
  const tmp = `${lockFile(home)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info));
  renameSync(tmp, lockFile(home));
}

/**
 * Takes the home for this process, or throws `StackLockError` naming the live holder. Two stacks starting in the
 * same instant may both pass the check; the file then names the last writer, and only its holder removes it.
 */
export function acquireStackLock(options: { home: string; store: string }): StackLock {
  const { home } = options;
  const held = readLiveStack({ home });
  if (held && !(held.pid === process.pid && held.host === hostname())) {
    throw new StackLockError(
      `another Headstart is running on ${home} (pid ${held.pid}, started ${held.startedAt}${held.url ? `, API ${held.url}` : ''}); stop it first, or set HEADSTART_HOME to another folder`,
    );
  }
  mkdirSync(home, { recursive: true });
  let info: LiveStack = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    store: options.store,
  };
  writeAtomically(home, info);
  const ours = () => {
    const now = readLock(home);
    return now?.pid === info.pid && now.host === info.host;
  };
  return {
    get info() {
      return info;
    },
    update(patch) {
      info = { ...info, ...patch };
      if (ours()) writeAtomically(home, info);
    },
    release() {
      if (ours()) rmSync(lockFile(home), { force: true });
    },
  };
}
