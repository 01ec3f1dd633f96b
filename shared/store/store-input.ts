import { z } from 'zod';
import type { PutOptions } from './object-store.js';
import { InvalidKeyError, InvalidOptionsError } from './store-errors.js';

// Checks shared by every store; a backend may add its own (the FS store forbids path traversal, for one).

export const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we reject
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const encoder = new TextEncoder();

export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

export function assertValidKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0)
    throw new InvalidKeyError('object key must be a non-empty string');
  if (utf8Length(key) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(
      `object key is longer than ${MAX_KEY_BYTES} UTF-8 bytes: ${key.slice(0, 80)}...`,
    );
  }
  // Control characters cannot travel in S3's XML listings and are never intended in Headstart keys.
  if (CONTROL_CHARS.test(key))
    throw new InvalidKeyError(`object key contains a control character: ${JSON.stringify(key)}`);
}

export function assertValidPrefix(prefix: unknown, what = 'prefix'): asserts prefix is string {
  if (typeof prefix !== 'string') throw new InvalidKeyError(`${what} must be a string`);
  if (utf8Length(prefix) > MAX_KEY_BYTES || CONTROL_CHARS.test(prefix)) {
    throw new InvalidKeyError(`${what} can never match a valid key: ${JSON.stringify(prefix.slice(0, 80))}`);
  }
}

const metadataName = z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'metadata names are lowercase [a-z0-9.-]');
const metadataValue = z
  .string()
  .regex(
    /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/,
    'metadata values are printable ASCII, not space-padded',
  );

/** S3's object tag limits: at most 10 tags, keys of 1-128 and values of 0-256 Unicode characters. */
export const MAX_TAGS = 10;
const MAX_TAG_KEY_CHARS = 128;
const MAX_TAG_VALUE_CHARS = 256;
// The characters AWS documents for tags across services; anything else S3 refuses (or a proxy might mangle).
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const chars = (s: string) => [...s].length;

const tagKey = z
  .string()
  .min(1, 'tag keys are not empty')
  .refine((k) => chars(k) <= MAX_TAG_KEY_CHARS, `tag keys are at most ${MAX_TAG_KEY_CHARS} characters`)
  .refine((k) => TAG_CHARS.test(k), 'tag keys are letters, digits, spaces and + - = . _ : / @')
  .refine((k) => !k.toLowerCase().startsWith('aws:'), "the 'aws:' tag prefix is reserved");
const tagValue = z
  .string()
  .refine((v) => chars(v) <= MAX_TAG_VALUE_CHARS, `tag values are at most ${MAX_TAG_VALUE_CHARS} characters`)
  .refine((v) => TAG_CHARS.test(v), 'tag values are letters, digits, spaces and + - = . _ : / @');
const tagsSchema = z
  .record(tagKey, tagValue)
  .refine((t) => Object.keys(t).length <= MAX_TAGS, `at most ${MAX_TAGS} tags per object`);

const putOptionsSchema = z
  .object({
    contentType: z
      .string()
      .regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, 'content type must be printable ASCII')
      .max(256)
      .optional(),
    metadata: z.record(metadataName, metadataValue).optional(),
    ifNoneMatch: z.literal('*').optional(),
    ifMatch: z.string().min(1).optional(),
    tags: tagsSchema.optional(),
  })
  .strict()
  .refine((o) => !(o.ifNoneMatch && o.ifMatch), 'ifNoneMatch and ifMatch cannot both be given')
  .refine(
    (o) =>
      Object.entries(o.metadata ?? {}).reduce((n, [k, v]) => n + k.length + v.length, 0) <=
      MAX_METADATA_BYTES,
    `metadata is larger than ${MAX_METADATA_BYTES} bytes`,
  );

export interface ParsedPutOptions {
  contentType: string;
  metadata: Record<string, string>;
  /** Empty when the caller gave none. */
  tags: Record<string, string>;
  ifNoneMatch?: '*';
  ifMatch?: string;
}

export function parsePutOptions(options: PutOptions | undefined): ParsedPutOptions {
  const parsed = putOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw invalid('invalid put options', parsed.error);
  const { contentType, metadata, ifNoneMatch, ifMatch, tags } = parsed.data;
  return {
    contentType: contentType ?? DEFAULT_CONTENT_TYPE,
    metadata: { ...metadata },
    tags: { ...tags },
    ...(ifNoneMatch ? { ifNoneMatch } : {}),
    ...(ifMatch ? { ifMatch } : {}),
  };
}

/** A tag set that replaces an object's tags: at least one tag (clearing is not offered; moto refuses an empty set). */
export function parseTags(tags: unknown): Record<string, string> {
  const parsed = tagsSchema.refine((t) => Object.keys(t).length > 0, 'at least one tag').safeParse(tags);
  if (!parsed.success) throw invalid('invalid tags', parsed.error);
  return { ...parsed.data };
}

/** S3's `x-amz-tagging` form: URL query encoding, with `%20` rather than `+` for spaces so no server can misread it. */
export function encodeTagging(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function invalid(what: string, error: z.ZodError): InvalidOptionsError {
  const detail = error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
  return new InvalidOptionsError(`${what}: ${detail}`, { cause: error });
}

export function toBytes(body: Uint8Array | string): Uint8Array {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError('object body must be a Uint8Array or a string');
}

/** S3 accepts ETags with or without their quotes (and callers pass both), so compare the bare values. */
export function sameEtag(a: string, b: string): boolean {
  return bareEtag(a) === bareEtag(b);
}

function bareEtag(etag: string): string {
  const strong = etag.startsWith('W/') ? etag.slice(2) : etag;
  return strong.length >= 2 && strong.startsWith('"') && strong.endsWith('"') ? strong.slice(1, -1) : strong;
}

/**
 * Compares keys the way S3 orders them: by UTF-8 bytes, which is Unicode code point order. JS `<` compares
 * UTF-16 code units and so puts characters above U+FFFF (surrogate pairs) before U+E000-U+FFFF; lifting
 * surrogates above that range restores code point order without encoding either string.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
