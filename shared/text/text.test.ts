import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSentenceFeaturizer, type SentenceFeatureSpec } from './sentence-features.js';
import { tokenize } from './text-tokenize.js';
import { buildWordTable } from './word-table.js';
import { readWinkVectors } from './word-vector-source.js';

const FIXTURE = new URL('../../test/fixtures/text/tiny-vectors.json', import.meta.url);

async function* chunksOf(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

async function tinyTable() {
  const json = readFileSync(FIXTURE, 'utf8');
  return buildWordTable(readWinkVectors(chunksOf(json, 97), { maxRank: 1000, dim: 4 }), 4);
}

const SPEC: SentenceFeatureSpec = {
  pooling: 'mean',
  denseWeight: 1,
  buckets: 1024,
  wordNgrams: 2,
  charMin: 2,
  charMax: 5,
  wordWeight: 1,
  charWeight: 1,
};

describe('tokenize', () => {
  it('folds full-width letters and case, keeps ? as a token and maps digits to 0 in the shape only', () => {
    const tokens = tokenize('Ｗhere is my £20 CARD?');
    expect(tokens.map((t) => t.text)).toEqual(['where', 'is', 'my', '£', '20', 'card', '?']);
    expect(tokens.map((t) => t.shape)).toContain('00');
    expect(tokens.find((t) => t.text === '?')?.word).toBe(false);
  });

  it('keeps words joined by an apostrophe, curly or straight, as one token', () => {
    expect(tokenize('I can’t find it').map((t) => t.text)).toEqual(['i', "can't", 'find', 'it']);
  });
});

describe('readWinkVectors', () => {
  it('reads every word in rank order whatever the chunk boundaries, and stops at the pruned size', async () => {
    const json = readFileSync(FIXTURE, 'utf8');
    const words = JSON.parse(json).words as string[];
    for (const size of [5, 64, 10_000]) {
      const read = [];
      for await (const w of readWinkVectors(chunksOf(json, size), { maxRank: 1000, dim: 4 }))
        read.push(w.word);
      expect(read).toEqual(words);
    }
    const pruned = [];
    for await (const w of readWinkVectors(chunksOf(json, 50), { maxRank: 7, dim: 4 })) pruned.push(w);
    expect(pruned.map((w) => w.rank)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('refuses a source whose vectors are not in rank order', async () => {
    const parsed = JSON.parse(readFileSync(FIXTURE, 'utf8'));
    parsed.vectors.my[5] = 5;
    const json = JSON.stringify(parsed);
    const read = async () => {
      for await (const _ of readWinkVectors(chunksOf(json, 100), { maxRank: 1000, dim: 4 })) {
        // drain
      }
    };
    await expect(read()).rejects.toMatchObject({ code: 'text_vector_source' });
  });
});

describe('word table', () => {
  it('keeps every vector within a cosine of 0.999 of its float source at int8 per row', async () => {
    const { table, fidelity } = await tinyTable();
    expect(fidelity.words).toBe(45);
    expect(fidelity.cosineMin).toBeGreaterThan(0.999);
    expect(table.lookup('card')).toBeGreaterThanOrEqual(0);
    expect(table.lookup('zebra')).toBe(-1);
  });
});

describe('sentence features', () => {
  it('gives the same sparse feature for the same text, columns ascending and unique', async () => {
    const { table } = await tinyTable();
    const f = createSentenceFeaturizer(SPEC, table);
    const a = f.featurize('Where is my card?');
    const b = f.featurize('where is my card ?');
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    expect(a.dim).toBe(4 + 1024);
    for (let i = 1; i < a.indices.length; i++) expect(a.indices[i]!).toBeGreaterThan(a.indices[i - 1]!);
  });

  it('puts the l2-normalized mean word vector first and each n-gram block at norm 1', async () => {
    const { table } = await tinyTable();
    const f = createSentenceFeaturizer({ ...SPEC, wordWeight: 0 }, table);
    const x = f.featurize('lost card');
    const dense = Array.from(x.values.subarray(0, 4));
    expect(Math.hypot(...dense)).toBeCloseTo(1, 5);
    const expected = [table.vector(table.lookup('lost')), table.vector(table.lookup('card'))];
    const mean = [0, 1, 2, 3].map((d) => expected[0]![d]! + expected[1]![d]!);
    const norm = Math.hypot(...mean);
    dense.forEach((v, d) => {
      expect(v).toBeCloseTo(mean[d]! / norm, 5);
    });
    expect(Math.hypot(...Array.from(x.values.subarray(4)))).toBeCloseTo(1, 5);
  });

  it('still describes a text of unknown words by its character n-grams, with no word-vector block', async () => {
    const { table } = await tinyTable();
    const f = createSentenceFeaturizer(SPEC, table);
    const x = f.featurize('zorblax quuxified');
    expect(x.indices[0]!).toBeGreaterThanOrEqual(4);
    expect(x.indices.length).toBeGreaterThan(20);
  });

  it('tells word order apart through word bigrams', async () => {
    const { table } = await tinyTable();
    const f = createSentenceFeaturizer({ ...SPEC, charMax: 0, pooling: 'none' }, table);
    const a = f.featurize('card lost');
    const b = f.featurize('lost card');
    expect(Array.from(a.indices)).not.toEqual(Array.from(b.indices));
  });
});
