import type { z } from 'zod';
import type { ObjectStore } from './object-store.js';

export interface ParseJsonOptions {
  /**
   * The error to throw when the body is not JSON or does not match the schema (`detail` says which, and how);
   * without it the JSON or schema error is thrown as it is.
   */
  invalid?: (detail: string, cause: unknown) => Error;
}

/** A stored JSON body checked against `schema`. */
export function parseJson<S extends z.ZodTypeAny>(
  body: Uint8Array,
  schema: S,
  options: ParseJsonOptions = {},
): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(body));
  } catch (cause) {
    throw options.invalid ? options.invalid('not JSON', cause) : cause;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw options.invalid
    ? options.invalid(parsed.error.issues[0]?.message ?? 'invalid', parsed.error)
    : parsed.error;
}

/** The object at `key` as `schema` says, or undefined when there is none. */
export async function readJson<S extends z.ZodTypeAny>(
  store: ObjectStore,
  key: string,
  schema: S,
  options: ParseJsonOptions = {},
): Promise<z.output<S> | undefined> {
  const o = await store.get(key);
  return o ? parseJson(o.body, schema, options) : undefined;
}
