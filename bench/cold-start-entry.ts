// Bundled by backbone-bench.ts with esbuild and run as a fresh process, as a Lambda would run its bundle: import,
// initialize wasm, read the exported backbone from disk, decode one JPEG, print its first feature vector's size.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBackbone, parseBackbone } from '../shared/backbone/index.js';
import { decodeImage } from '../shared/image/index.js';
import { initTf } from '../shared/tf/tf-runtime.js';

const [dir, image, wasmDir] = process.argv.slice(2) as [string, string, string];
await initTf({ wasmDir });
const [json, weights, bytes] = await Promise.all([
  readFile(join(dir, 'backbone.json')),
  readFile(join(dir, 'weights.bin')),
  readFile(image),
]);
const backbone = await loadBackbone(parseBackbone(json, weights), { warmup: false });
const decoded = await decodeImage(bytes, { size: backbone.inputSize });
const [features] = await backbone.extract([decoded.data]);
console.log(`features ${features?.length}`);
