import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));

function sourcesUnder(dir: string): string[] {
  return readdirSync(join(repo, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|tsx|mjs)$/.test(f) && !f.endsWith('.test.ts'))
    .map((f) => join(dir, f));
}

describe('production code', () => {
  it('never imports from test/ nor builds a path into it', () => {
    const offenders: string[] = [];
    for (const file of ['shared', 'functions', 'infra'].flatMap(sourcesUnder)) {
      const text = readFileSync(join(repo, file), 'utf8');
      const imports = /(?:from|import\()\s*['"][^'"]*\btest\//.test(text);
      const paths = /['"]test['"]\s*,\s*['"]fixtures['"]|['"`][^'"`]*\btest\/fixtures\//.test(text);
      if (imports || paths) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });

  it('keeps the dashboard out of the edge function: nothing the edge bundles imports shared/ui/', () => {
    const edge = [...sourcesUnder('functions/edge'), ...sourcesUnder('shared/http')];
    const offenders = edge.filter((file) =>
      /from\s*['"][^'"]*\/ui\//.test(readFileSync(join(repo, file), 'utf8')),
    );
    expect(edge.length).toBeGreaterThan(5);
    expect(offenders).toEqual([]);
  });
});
