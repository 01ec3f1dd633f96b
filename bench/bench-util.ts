import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The benchmark dataset lives outside the repo and is never committed. */
export const clothingSmallDir = join(repoRoot, '..', 'shared', 'datasets', 'clothing-small');

export function emit(
  metric: string,
  value: number | null,
  unit: string,
  extra: Record<string, unknown> = {},
): void {
  const v = value === null ? null : Number(value.toPrecision(6));
  console.log(JSON.stringify({ metric, value: v, unit, ...extra }));
}

export function percentile(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function timeRuns(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

export interface LabelledFile {
  label: string;
  path: string;
}

/** `<root>/<split>/<label>/<file>`, sorted, optionally at most `perLabel` files of each label. */
export function listSplit(root: string, split: string, perLabel = Number.POSITIVE_INFINITY): LabelledFile[] {
  const dir = join(root, split);
  if (!existsSync(dir)) return [];
  const out: LabelledFile[] = [];
  for (const label of readdirSync(dir).sort()) {
    const files = readdirSync(join(dir, label)).sort().slice(0, perLabel);
    for (const f of files) out.push({ label, path: join(dir, label, f) });
  }
  return out;
}

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Banner for ESM bundles that contain tfjs-backend-wasm: its Emscripten glue expects CommonJS's globals. */
export const CJS_GLOBALS_BANNER = [
  "import { createRequire as __cr } from 'node:module';",
  "import { fileURLToPath as __fu } from 'node:url';",
  "import { dirname as __dn } from 'node:path';",
  'const require = __cr(import.meta.url);',
  'const __filename = __fu(import.meta.url);',
  'const __dirname = __dn(__filename);',
].join(' ');
