import { z } from 'zod';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import {
  loadTextBackbone,
  type TextBackbone,
  type TextBackboneManifest,
  type TextBackbonePackage,
  textBackboneManifestSchema,
} from './text-backbone.js';
import { InvalidTextBackboneError, TextBackboneNotFoundError } from './text-errors.js';

export const TEXT_BACKBONE_JSON = 'text-backbone.json';
export const TEXT_BACKBONE_WEIGHTS = 'text-weights.bin';

/**
 * Publishes a text backbone: weights first, then the manifest whose presence makes it exist (as image backbones
 * are published). The id names everything that changes features, so re-publishing an id is a no-op.
 */
export async function saveTextBackbone(store: ObjectStore, pkg: TextBackbonePackage): Promise<void> {
  const { id } = pkg.manifest;
  const files = textBackboneFiles(pkg);
  await store.put(layout.textBackbone(id, TEXT_BACKBONE_WEIGHTS), files[TEXT_BACKBONE_WEIGHTS], {
    contentType: 'application/octet-stream',
  });
  await store.put(layout.textBackbone(id, TEXT_BACKBONE_JSON), files[TEXT_BACKBONE_JSON], {
    contentType: 'application/json',
  });
}

/** A text backbone's two files as they are stored (and as `cdk synth` ships them). */
export function textBackboneFiles(pkg: TextBackbonePackage): {
  [TEXT_BACKBONE_JSON]: string;
  [TEXT_BACKBONE_WEIGHTS]: Uint8Array;
} {
  return {
    [TEXT_BACKBONE_JSON]: JSON.stringify({ manifest: pkg.manifest }),
    [TEXT_BACKBONE_WEIGHTS]: pkg.weights,
  };
}

/** A text backbone from its two stored files; the weights are checked against the manifest's sha256. */
export function parseTextBackboneFiles(json: Uint8Array, weights: Uint8Array, id: string): TextBackbone {
  return loadTextBackbone({ manifest: descriptorOf(json, id), weights });
}

const descriptorSchema = z.object({ manifest: z.unknown() });

/** The unchecked manifest inside a `text-backbone.json`. */
function descriptorOf(json: Uint8Array, id: string): unknown {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(json));
  } catch (cause) {
    throw new InvalidTextBackboneError(`${TEXT_BACKBONE_JSON} of '${id}' is not valid JSON`, { cause });
  }
  const parsed = descriptorSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidTextBackboneError(`${TEXT_BACKBONE_JSON} of '${id}' has no manifest`);
  return parsed.data.manifest;
}

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
  return parseTextBackboneFiles(json.body, weights.body, id);
}

/** Only the manifest of a stored text backbone (what training records), without reading its weights. */
export async function readTextBackboneManifest(
  store: ObjectStore,
  id: string,
): Promise<TextBackboneManifest> {
  const json = await store.get(layout.textBackbone(id, TEXT_BACKBONE_JSON));
  if (!json) throw new TextBackboneNotFoundError(`text backbone '${id}' is not in ${store.description}`);
  const parsed = textBackboneManifestSchema.safeParse(descriptorOf(json.body, id));
  if (!parsed.success) {
    throw new InvalidTextBackboneError(
      `the manifest of text backbone '${id}' is invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
    );
  }
  return parsed.data;
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
