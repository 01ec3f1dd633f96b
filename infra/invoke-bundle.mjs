// Runs a built Lambda bundle the way Lambda does: a fresh Node process imports the bundle, then calls its
// `handler` with one event. Usage: node invoke-bundle.mjs <bundle index.mjs> <event.json> <result.json>
// The result goes to a file because the handlers log JSON lines to stdout.
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, eventFile, resultFile] = process.argv.slice(2);
if (!bundle || !eventFile || !resultFile) {
  process.stderr.write('usage: node invoke-bundle.mjs <bundle> <event.json> <result.json>\n');
  process.exit(2);
}
const { handler } = await import(pathToFileURL(bundle).href);
const event = JSON.parse(readFileSync(eventFile, 'utf8'));
const context = {
  functionName: 'headstart-bundle-test',
  functionVersion: '$LATEST',
  awsRequestId: 'bundle-test-request',
  memoryLimitInMB: '2048',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 300_000,
};
const result = await handler(event, context);
writeFileSync(resultFile, JSON.stringify(result ?? null));
// Like a Lambda that returned: background timers (caches, warm-ups) must not keep the process alive.
process.exit(0);
