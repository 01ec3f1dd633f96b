import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { motoBucket } from '../../test/support/moto.js';
import { openStore, s3StoreOptions, storeSpecSchema } from './store-spec.js';

const endpoint = inject('motoEndpoint');
if (!endpoint) console.warn(`[store-spec tests] S3 cases skipped: ${inject('motoSkipReason')}`);

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('openStore', () => {
  it('opens the file-system store under an fs spec: a second store over the same spec reads what the first wrote', async () => {
    const root = mkdtempSync(join(tmpdir(), 'headstart-spec-'));
    const writer = openStore({ kind: 'fs', root });
    await writer.put('projects/a/settings.json', '{"x":1}');
    const reader = openStore({ kind: 'fs', root });
    expect(new TextDecoder().decode((await reader.get('projects/a/settings.json'))!.body)).toBe('{"x":1}');
    expect(reader.description).toBe(pathToFileURL(root).href);
  });

  it.skipIf(!endpoint)(
    'opens an S3 store path-style on an S3-compatible endpoint, with or without a region',
    async () => {
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const { bucket, store: direct } = await motoBucket(endpoint!, 'hs-spec');
      const withRegion = openStore({ kind: 's3', bucket, region: 'us-east-1', endpoint: endpoint! });
      await withRegion.put('a.txt', 'from the spec');
      expect(new TextDecoder().decode((await direct.get('a.txt'))!.body)).toBe('from the spec');
      const noRegion = openStore({ kind: 's3', bucket, endpoint: endpoint! });
      expect(new TextDecoder().decode((await noRegion.get('a.txt'))!.body)).toBe('from the spec');
      expect(noRegion.description).toBe(`s3://${bucket} (${endpoint})`);
    },
  );
});

describe('storeSpecSchema', () => {
  it('refuses a bucket name too short for S3 and an endpoint that is not a URL, naming the field', () => {
    const short = storeSpecSchema.safeParse({ kind: 's3', bucket: 'ab', region: 'us-east-1' });
    expect(short.success).toBe(false);
    expect(short.error?.issues[0]?.path).toEqual(['bucket']);
    const badEndpoint = storeSpecSchema.safeParse({ kind: 's3', bucket: 'abc', endpoint: 'not a url' });
    expect(badEndpoint.error?.issues[0]?.path).toEqual(['endpoint']);
    expect(storeSpecSchema.safeParse({ kind: 'fs', root: '' }).success).toBe(false);
  });
});

describe('s3StoreOptions', () => {
  it('addresses an S3-compatible endpoint path-style and AWS itself virtual-hosted', () => {
    expect(
      s3StoreOptions({ kind: 's3', bucket: 'b-1', region: 'eu-west-1', endpoint: 'http://h:9' }),
    ).toEqual({
      bucket: 'b-1',
      region: 'eu-west-1',
      endpoint: 'http://h:9',
      forcePathStyle: true,
    });
    expect(s3StoreOptions({ kind: 's3', bucket: 'b-1', region: 'eu-west-1' })).toEqual({
      bucket: 'b-1',
      region: 'eu-west-1',
    });
  });
});
