#!/usr/bin/env node
// `headstart` executable: runs the TypeScript CLI through tsx, so a clone needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./headstart.ts');
process.exitCode = await main();
