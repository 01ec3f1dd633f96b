import { z } from 'zod';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import { loadTextBackbone, type TextBackbone, type TextBackbonePackage } from './text-backbone.js';
import { InvalidTextBackboneError, TextBackboneNotFoundError } from './text-errors.js';

export const TEXT_BACKBONE_JSON = 'text-backbone.json';
export const TEXT_BACKBONE_WEIGHTS = 'text-weights.bin';

/**
 * Publishes a text backbone: weights first, then the manifest whose presence makes it exist (as image backbones
 * are published). The id names everything that changes features, so re-publishing an id is a no-op.
 */
export async function saveTextBackbone(store: ObjectStore, pkg: TextBackbonePackage): Promise<void> {
  const { id } = pkg.manifest;
  await store.put(layout.textBackbone(id, TEXT_BACKBONE_WEIGHTS), pkg.weights, {
    contentType: 'application/octet-stream',
  });
  await store.put(layout.textBackbone(id, TEXT_BACKBONE_JSON), JSON.stringify({ manifest: pkg.manifest }), {
    contentType: 'application/json',
  });
}

const descriptorSchema = z.object({ manifest: z.unknown() });

export async function hasTextBackbone(store: ObjectStore, id: string): Promise<boolean> {
  return (await store.head(layout.textBackbone(id, TEXT_BACKBONE_JSON))) !== undefined;
}

/** Reads and loads a stored text backbone, its weights checked against the manifest's sha256. */
export async function readTextBackbone(store: ObjectStore, id: string): Promise<TextBackbone> {
  const [json, weights] = await Promise.all([
    store.get(layout.textBackbone(id, TEXT_BACKBONE_JSON)),
    store.get(layout.textBackbone(id, TEXT_BACKBONE_WEIGHTS)),
  ]);
  if (!json || !weights) {
    throw new TextBackboneNotFoundError(`text backbone '${id}' is not in ${store.description}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(json.body));
  } catch (cause) {
    throw new InvalidTextBackboneError(`${TEXT_BACKBONE_JSON} of '${id}' is not valid JSON`, { cause });
  }
  const parsed = descriptorSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidTextBackboneError(`${TEXT_BACKBONE_JSON} of '${id}' has no manifest`);
  return loadTextBackbone({ manifest: parsed.data.manifest, weights: weights.body });
}

const pointerSchema = z.object({ id: z.string().min(1) });

export async function setDefaultTextBackbone(store: ObjectStore, id: string): Promise<void> {
  await store.put(layout.defaultTextBackbonePointer, JSON.stringify({ id }), {
    contentType: 'application/json',
  });
}

export async function readDefaultTextBackboneId(store: ObjectStore): Promise<string | undefined> {
  const o = await store.get(layout.defaultTextBackbonePointer);
  if (!o) return undefined;
  const parsed = pointerSchema.safeParse(JSON.parse(new TextDecoder().decode(o.body)));
  if (!parsed.success) throw new InvalidTextBackboneError(`${layout.defaultTextBackbonePointer} is invalid`);
  return parsed.data.id;
}
