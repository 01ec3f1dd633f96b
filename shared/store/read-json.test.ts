import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HeadstartError } from '../headstart-error.js';
import { parseJson } from './read-json.js';

const schema = z.object({ id: z.string() });
const bytes = (s: string) => new TextEncoder().encode(s);
const invalid = (detail: string, cause: unknown) =>
  new HeadstartError('bad_record', `r.json: ${detail}`, { cause });

describe('parseJson', () => {
  it('returns the parsed body when it matches the schema', () => {
    expect(parseJson(bytes('{"id":"a","extra":1}'), schema)).toEqual({ id: 'a' });
  });

  it('throws the JSON error as it is without an invalid option', () => {
    expect(() => parseJson(bytes('{"id":'), schema)).toThrow(SyntaxError);
  });

  it("raises the caller's error for a body that is not JSON, with the parse error as its cause", () => {
    const err = (() => {
      try {
        parseJson(bytes('{"id":'), schema, { invalid });
      } catch (e) {
        return e;
      }
    })() as HeadstartError;
    expect(err.code).toBe('bad_record');
    expect(err.message).toBe('r.json: not JSON');
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it("raises the caller's error naming the schema's first issue", () => {
    expect(() => parseJson(bytes('{"id":3}'), schema, { invalid })).toThrow(/^r\.json: Expected string/);
  });
});
