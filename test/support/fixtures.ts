import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const clothingMiniDir = join(fixturesDir, 'clothing-mini');

/** Labelled fixture photos of one split of clothing-mini: `{ label, path, bytes }`, sorted for determinism. */
export function clothingMini(split: 'train' | 'eval'): { label: string; path: string; bytes: Uint8Array }[] {
  const root = join(clothingMiniDir, split);
  const out: { label: string; path: string; bytes: Uint8Array }[] = [];
  for (const label of readdirSync(root).sort()) {
    for (const file of readdirSync(join(root, label)).sort()) {
      const path = join(root, label, file);
      out.push({ label, path, bytes: new Uint8Array(readFileSync(path)) });
    }
  }
  return out;
}
