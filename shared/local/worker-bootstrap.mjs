// Worker threads start without the parent's TypeScript loader: register tsx, then run the worker's .ts entry.
// Plain .mjs so it loads the same way under the CLI (bin.mjs), under vitest and from compiled code.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
