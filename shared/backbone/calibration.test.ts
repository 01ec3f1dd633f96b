import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../image/index.js';
import { calibrationPhotosDir } from './calibration.js';

describe('calibration photos', () => {
  const root = calibrationPhotosDir();

  it('live in the code, not under test/', () => {
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    expect(relative(repo, root).split(sep)).toEqual(['shared', 'backbone', 'calibration-photos']);
  });

  it('hold at least two photos of each of four labels, every one decodable at 224 px', async () => {
    const labels = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory());
    expect(labels.map((e) => e.name).sort()).toEqual(['hat', 'pants', 'shoes', 't-shirt']);
    for (const label of labels) {
      const files = readdirSync(join(root, label.name)).filter((f) => f.endsWith('.jpg'));
      expect(files.length, label.name).toBeGreaterThanOrEqual(2);
      for (const f of files) {
        const { data } = await decodeImage(new Uint8Array(readFileSync(join(root, label.name, f))), {
          size: 224,
        });
        expect(data.length).toBe(224 * 224 * 3);
      }
    }
  });

  it('come with their source and CC0 licence', () => {
    const licence = readFileSync(join(root, 'LICENSE.md'), 'utf8');
    expect(licence).toMatch(/CC0 1\.0 Universal/);
    expect(licence).toMatch(/alexeygrigorev\/clothing-dataset/);
  });
});
