import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsv } from '../shared/text/csv.js';
import { repoRoot } from './bench-util.js';

/** `../shared/datasets/banking77`: 77 intents, CC BY 4.0, never committed. */
export const BANKING77_DIR = join(repoRoot, '..', 'shared', 'datasets', 'banking77');

export interface Banking77Row {
  text: string;
  label: string;
}

/** The rows of `train.csv` or `test.csv` (columns `text` and `category`). */
export function readBanking77(file: 'train.csv' | 'test.csv'): Banking77Row[] {
  const [header, ...rows] = parseCsv(readFileSync(join(BANKING77_DIR, file), 'utf8'));
  const t = header!.indexOf('text');
  const l = header!.indexOf('category');
  return rows.filter((r) => r.length > 1).map((r) => ({ text: r[t]!, label: r[l]! }));
}
