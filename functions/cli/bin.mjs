#!/usr/bin/env node
// `headstart` executable: runs the TypeScript CLI through tsx, so a clone needs no build step.
import { register } from 'tsx/esm/api';

// The AWS SDK prints a multi-line NodeVersionSupportWarning on every command under Node < 22, which Headstart
// supports (engines: >=20.9); it says nothing the user can act on here. It reads this variable when its first
// client is built, so it is set before anything loads; a value the user chose is left alone.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
const { main } = await import('./headstart.ts');
process.exitCode = await main();
