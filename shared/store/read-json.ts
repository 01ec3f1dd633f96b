import type { z } from 'zod';
import type { ObjectStore } from './object-store.js';

/** A stored JSON body checked against `schema`; throws the JSON or schema error as it is. */
export function parseJson<S extends z.ZodTypeAny>(body: Uint8Array, schema: S): z.output<S> {
  return schema.parse(JSON.parse(new TextDecoder().decode(body)));
}

/** The object at `key` as `schema` says, or undefined when there is none. */
export async function readJson<S extends z.ZodTypeAny>(
  store: ObjectStore,
  key: string,
  schema: S,
): Promise<z.output<S> | undefined> {
  const o = await store.get(key);
  return o ? parseJson(o.body, schema) : undefined;
}
