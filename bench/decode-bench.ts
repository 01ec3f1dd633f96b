/**
 * Decode + resize to 224x224 RGB for one ~400x533 JPEG: sharp (the path decodeImage uses) against two pure
 * wasm/JS decoders with a plain bilinear centre-crop resize. Prints JSON lines, p50 over 200 runs after warm-up.
 *
 *   npx tsx bench/decode-bench.ts [image.jpg]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import decodeJsquash, { init as initJsquash } from '@jsquash/jpeg/decode.js';
import jpegJs from 'jpeg-js';
import { decodeImage } from '../shared/image/index.js';

const SIZE = 224;
const WARMUP = 20;
const RUNS = 200;

const here = dirname(fileURLToPath(import.meta.url));
const datasetTest = join(here, '../../shared/datasets/clothing-small/test');
const fixtureRoot = join(here, '../test/fixtures/clothing-mini');

function listJpegs(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...listJpegs(path));
    else if (entry.name.endsWith('.jpg')) out.push(path);
  }
  return out.sort();
}

/** Reads the SOF dimensions so picking a 400x533 image does not need a decoder. */
function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  let at = 2;
  while (at + 9 < bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1]!;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return {
        height: (bytes[at + 5]! << 8) | bytes[at + 6]!,
        width: (bytes[at + 7]! << 8) | bytes[at + 8]!,
      };
    }
    at += 2 + length;
  }
  return undefined;
}

function pickImage(): { path: string; bytes: Buffer } {
  const explicit = process.argv[2];
  if (explicit) return { path: explicit, bytes: readFileSync(explicit) };
  let candidates: string[] = [];
  try {
    candidates = listJpegs(datasetTest);
  } catch {
    // The dataset lives outside the repository and may be absent; fall back to the committed fixtures.
  }
  for (const path of candidates) {
    const bytes = readFileSync(path);
    const size = jpegSize(bytes);
    if (size?.width === 400 && size.height === 533) return { path, bytes };
  }
  const largest = listJpegs(fixtureRoot).sort((a, b) => statSync(b).size - statSync(a).size)[0];
  if (!largest) throw new Error('no JPEG found to benchmark');
  return { path: largest, bytes: readFileSync(largest) };
}

/**
 * Shorter side to SIZE, centre crop, bilinear sampling at pixel centres: the simplest resize a pure-JS path
 * would ship. No antialiasing, so it is cheaper (and blurrier/aliased) than sharp's lanczos3.
 */
function bilinearCenterCrop(src: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(SIZE * SIZE * 3);
  const side = Math.min(width, height);
  const scale = side / SIZE;
  const left = (width - side) / 2;
  const top = (height - side) / 2;
  for (let oy = 0; oy < SIZE; oy++) {
    const sy = Math.min(Math.max(top + (oy + 0.5) * scale - 0.5, 0), height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, height - 1);
    const fy = sy - y0;
    for (let ox = 0; ox < SIZE; ox++) {
      const sx = Math.min(Math.max(left + (ox + 0.5) * scale - 0.5, 0), width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, width - 1);
      const fx = sx - x0;
      const i00 = (y0 * width + x0) * channels;
      const i01 = (y0 * width + x1) * channels;
      const i10 = (y1 * width + x0) * channels;
      const i11 = (y1 * width + x1) * channels;
      const o = (oy * SIZE + ox) * 3;
      for (let c = 0; c < 3; c++) {
        const top0 = src[i00 + c]! + (src[i01 + c]! - src[i00 + c]!) * fx;
        const bottom = src[i10 + c]! + (src[i11 + c]! - src[i10 + c]!) * fx;
        out[o + c] = Math.round(top0 + (bottom - top0) * fy);
      }
    }
  }
  return out;
}

async function p50(run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function emit(metric: string, value: number): void {
  console.log(JSON.stringify({ metric, value: Math.round(value * 1000) / 1000, unit: 'ms' }));
}

async function main(): Promise<void> {
  const { path, bytes } = pickImage();
  const size = jpegSize(bytes);
  console.error(
    `decode-bench: ${path} (${size?.width}x${size?.height}, ${bytes.length} bytes) -> ${SIZE}x${SIZE}`,
  );

  // The Emscripten glue would fetch() its .wasm by URL, which fails in Node; hand it the compiled module.
  const wasmPath = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
  // tsconfig has no DOM lib, so the WebAssembly global is typed by hand here.
  const { WebAssembly: wasmApi } = globalThis as unknown as {
    WebAssembly: { compile(bytes: Uint8Array): Promise<object> };
  };
  const wasm = await wasmApi.compile(readFileSync(wasmPath));
  // Its .d.ts only declares the options overload; the JS also accepts a WebAssembly.Module first.
  await initJsquash(wasm as unknown as Parameters<typeof initJsquash>[0]);
  const arrayBuffer = bytes.buffer.slice(
    bytes.byteOffset,
    bytes.byteOffset + bytes.byteLength,
  ) as ArrayBuffer;

  const sharpPath = () => decodeImage(bytes, { size: SIZE });
  const jsquashPath = async () => {
    const image = await decodeJsquash(arrayBuffer);
    return bilinearCenterCrop(new Uint8Array(image.data.buffer), image.width, image.height, 4);
  };
  const jpegJsPath = async () => {
    const image = jpegJs.decode(bytes, { useTArray: true, formatAsRGBA: false });
    return bilinearCenterCrop(image.data, image.width, image.height, 3);
  };

  // Fail loudly rather than time a path that returns the wrong shape.
  for (const [name, run] of [
    ['sharp', sharpPath],
    ['jsquash', jsquashPath],
    ['jpeg-js', jpegJsPath],
  ] as const) {
    const result = await run();
    const data = 'data' in result ? result.data : result;
    if (data.length !== SIZE * SIZE * 3) throw new Error(`${name} produced ${data.length} bytes`);
  }

  emit('decode_resize_p50_ms', await p50(sharpPath));
  emit('decode_resize_jsquash_p50_ms', await p50(jsquashPath));
  emit('decode_resize_jpegjs_p50_ms', await p50(jpegJsPath));
}

await main();
