import { describe, expect, it } from 'vitest';
import { createRng } from './numerics.js';
import { hashFraction, splitByHash, splitByIds } from './split.js';

function randomIds(count: number, seed: number): string[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: 8 }, () =>
      Math.floor(rng() * 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join(''),
  );
}

/** An id whose hash fraction is exactly `f` (to 32 bits), padded to sha256 length. */
function idAt(f: number, tail: string): string {
  return (
    Math.floor(f * 2 ** 32)
      .toString(16)
      .padStart(8, '0') + tail.padStart(56, '0')
  );
}

function sides(
  ids: readonly string[],
  labels: number[],
  fraction = 0.2,
): Map<string, 'train' | 'validation'> {
  const split = splitByHash(ids, labels, { fraction });
  const out = new Map<string, 'train' | 'validation'>();
  for (const i of split.train) out.set(ids[i]!, 'train');
  for (const i of split.validation) out.set(ids[i]!, 'validation');
  return out;
}

describe('splitByHash', () => {
  it('sends an example to validation exactly when its hash fraction is below the fraction', () => {
    const ids = randomIds(500, 1);
    const labels = ids.map((_, i) => i % 3);
    const split = splitByHash(ids, labels, { fraction: 0.2 });
    for (const i of split.validation) expect(hashFraction(ids[i]!)).toBeLessThan(0.2);
    for (const i of split.train) expect(hashFraction(ids[i]!)).toBeGreaterThanOrEqual(0.2);
    expect(split.train.length + split.validation.length).toBe(500);
    expect(split.validation.length / 500).toBeGreaterThan(0.14);
    expect(split.validation.length / 500).toBeLessThan(0.26);
  });

  it('keeps every existing example on its side when examples are added', () => {
    const ids = randomIds(1000, 2);
    const labels = ids.map((_, i) => i % 4);
    const before = sides(ids.slice(0, 300), labels.slice(0, 300));
    for (const size of [301, 450, 1000]) {
      const after = sides(ids.slice(0, size), labels.slice(0, size));
      for (const [id, side] of before) expect(after.get(id)).toBe(side);
    }
  });

  it('assigns each example by its id, whatever the input order', () => {
    const ids = randomIds(200, 3);
    const labels = ids.map((_, i) => i % 5);
    const order = ids.map((_, i) => i).reverse();
    const forward = sides(ids, labels);
    const backward = sides(
      order.map((i) => ids[i]!),
      order.map((i) => labels[i]!),
    );
    expect(backward).toEqual(forward);
  });

  it('moves the lowest-hash example to validation when none of a label fell below the fraction', () => {
    const ids = [idAt(0.9, 'a'), idAt(0.5, 'b'), idAt(0.7, 'c')];
    const split = splitByHash(ids, [0, 0, 0]);
    expect(split.validation).toEqual([1]);
    expect(split.train).toEqual([0, 2]);
  });

  it('moves the highest-hash example to train when all of a label fell below the fraction', () => {
    const ids = [idAt(0.01, 'a'), idAt(0.15, 'b'), idAt(0.05, 'c')];
    const split = splitByHash(ids, [1, 1, 1]);
    expect(split.train).toEqual([1]);
    expect(split.validation).toEqual([0, 2]);
  });

  it('lets a forced example return to train once the label has a real validation example', () => {
    const small = [idAt(0.9, 'a'), idAt(0.5, 'b')];
    expect(splitByHash(small, [0, 0]).validation).toEqual([1]);
    const grown = [...small, idAt(0.1, 'c')];
    expect(splitByHash(grown, [0, 0, 0]).validation).toEqual([2]);
  });

  it('always trains on a label with a single example', () => {
    const split = splitByHash([idAt(0.01, 'a'), idAt(0.3, 'b'), idAt(0.6, 'c')], [0, 1, 1]);
    expect(split.train).toContain(0);
    expect(split.validation).toEqual([1]);
  });

  it('refuses ids that are not hex content hashes', () => {
    expect(() => splitByHash(['photo-1.jpg', 'photo-2.jpg'], [0, 1])).toThrow(/hex/);
  });
});

describe('splitByIds', () => {
  it('validates on exactly the given ids, ignoring unknown ones, with indices ascending', () => {
    const ids = randomIds(6, 4);
    const split = splitByIds(ids, [ids[4]!, ids[1]!, 'not-an-example']);
    expect(split).toEqual({ train: [0, 2, 3, 5], validation: [1, 4] });
  });

  it('keeps the chosen validation examples when photos are added', () => {
    const ids = randomIds(40, 5);
    const chosen = ids.slice(0, 20).filter((_, i) => i % 4 === 0);
    const before = splitByIds(ids.slice(0, 20), chosen).validation.map((i) => ids[i]);
    const after = splitByIds(ids, chosen).validation.map((i) => ids[i]);
    expect(after).toEqual(before);
    expect(after).toEqual(chosen);
  });
});
