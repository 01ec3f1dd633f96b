import { z } from 'zod';
import { errorKind } from '../headstart-error.js';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import { BackboneError, InvalidBackboneError } from './backbone-errors.js';
import { type BackboneManifest, backboneIdSchema, backboneManifestSchema } from './backbone-manifest.js';
import {
  BACKBONE_JSON,
  BACKBONE_WEIGHTS,
  type BackbonePackage,
  parseBackbone,
  serializeBackbone,
} from './backbone-package.js';

/** The backbone is not in the store. */
export class BackboneNotFoundError extends errorKind(BackboneError, {
  name: 'BackboneNotFoundError',
  code: 'backbone_not_found',
}) {}

const defaultPointerSchema = z.object({ id: backboneIdSchema });

/**
 * Publishes a backbone: weights first, then backbone.json, whose presence is what makes the backbone exist.
 * Both are immutable per id (the id names everything that changes features), so re-publishing the same id is a
 * no-op and a reader never sees a manifest whose weights are not there yet.
 */
export async function saveBackbone(store: ObjectStore, pkg: BackbonePackage): Promise<void> {
  const { json, weights } = serializeBackbone(pkg);
  const id = pkg.manifest.id;
  await store.put(layout.backbone(id, BACKBONE_WEIGHTS), weights, {
    contentType: 'application/octet-stream',
  });
  await store.put(layout.backbone(id, BACKBONE_JSON), json, { contentType: 'application/json' });
}

export async function readBackbone(store: ObjectStore, id: string): Promise<BackbonePackage> {
  const [json, weights] = await Promise.all([
    store.get(layout.backbone(id, BACKBONE_JSON)),
    store.get(layout.backbone(id, BACKBONE_WEIGHTS)),
  ]);
  if (!json || !weights) {
    throw new BackboneNotFoundError(
      `backbone '${id}' is not in ${store.description} (${layout.backbone(id, '')})`,
    );
  }
  return parseBackbone(json.body, weights.body);
}

export async function listBackbones(store: ObjectStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of store.list(layout.backbonesPrefix)) {
    const m = /^backbones\/([^/]+)\/backbone\.json$/.exec(o.key);
    if (m) ids.push(m[1]!);
  }
  return ids;
}

export async function setDefaultBackbone(store: ObjectStore, id: string): Promise<void> {
  await store.put(layout.defaultBackbonePointer, JSON.stringify({ id }), { contentType: 'application/json' });
}

export async function readDefaultBackboneId(store: ObjectStore): Promise<string | undefined> {
  const o = await store.get(layout.defaultBackbonePointer);
  if (!o) return undefined;
  const parsed = defaultPointerSchema.safeParse(JSON.parse(new TextDecoder().decode(o.body)));
  if (!parsed.success) throw new InvalidBackboneError(`${layout.defaultBackbonePointer} is invalid`);
  return parsed.data.id;
}

/** Only the manifest (no weights): what training needs to know which cached features to read. */
export async function readBackboneManifest(store: ObjectStore, id: string): Promise<BackboneManifest> {
  const json = await store.get(layout.backbone(id, BACKBONE_JSON));
  if (!json) throw new BackboneNotFoundError(`backbone '${id}' is not in ${store.description}`);
  const parsed = z
    .object({ manifest: backboneManifestSchema })
    .safeParse(JSON.parse(new TextDecoder().decode(json.body)));
  if (!parsed.success) throw new InvalidBackboneError(`${layout.backbone(id, BACKBONE_JSON)} is invalid`);
  return parsed.data.manifest;
}
