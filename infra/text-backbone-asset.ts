import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { layout } from '../shared/layout/index.js';
import {
  buildBuiltInTextBackbone,
  builtInTextBackboneId,
  parseTextBackboneFiles,
  TEXT_BACKBONE_JSON,
  TEXT_BACKBONE_WEIGHTS,
  type TextBackboneSource,
  textBackboneFiles,
  WINK_TEXT_SOURCE,
  WINK_VERSION,
} from '../shared/text/index.js';
import { type AssetFile, writeDir } from './backbone-asset.js';
import { InfraError } from './infra-errors.js';

/** The deployable built-in text backbone: its two files for `backbones/<id>/`, weights first. */
export interface TextBackboneAsset {
  id: string;
  dir: string;
  weightsBytes: number;
  /** True when the files came from the cache rather than a fresh build. */
  cached: boolean;
  files: AssetFile[];
}

function readCached(dir: string, id: string): { weightsBytes: number } | undefined {
  const json = join(dir, TEXT_BACKBONE_JSON);
  const weights = join(dir, TEXT_BACKBONE_WEIGHTS);
  if (!existsSync(json) || !existsSync(weights)) return undefined;
  try {
    // Parsing checks the weights against the manifest's sha256, so a torn or stale cache is rebuilt.
    const tb = parseTextBackboneFiles(readFileSync(json), new Uint8Array(readFileSync(weights)), id);
    return tb.manifest.id === id ? { weightsBytes: tb.manifest.weightsBytes } : undefined;
  } catch {
    return undefined;
  }
}

async function build(dir: string, id: string, source: TextBackboneSource): Promise<void> {
  let files: Record<string, string | Uint8Array>;
  try {
    const { pkg } = await buildBuiltInTextBackbone(source);
    if (pkg.manifest.id !== id) {
      throw new InfraError(
        'backbone_id_mismatch',
        `built text backbone '${pkg.manifest.id}', expected '${id}'`,
      );
    }
    files = textBackboneFiles(pkg);
  } catch (cause) {
    if (cause instanceof InfraError) throw cause;
    throw new InfraError('backbone_build_failed', `building the text backbone failed: ${String(cause)}`, {
      cause,
    });
  }
  writeDir(dir, files);
}

/**
 * Builds the built-in text backbone at synth time from the pinned word-vector package (deterministic: the same
 * package and recipe give the same id and bytes as the local stack's), cached by id under `cacheRoot`.
 */
export async function buildTextBackboneAsset(options: {
  cacheRoot: string;
  source?: TextBackboneSource;
}): Promise<TextBackboneAsset> {
  const source = options.source ?? WINK_TEXT_SOURCE;
  const id = builtInTextBackboneId(source);
  const dir = join(options.cacheRoot, `${source === WINK_TEXT_SOURCE ? WINK_VERSION : 'custom'}-${id}`);
  let found = readCached(dir, id);
  const cached = found !== undefined;
  if (!found) {
    await build(dir, id, source);
    found = readCached(dir, id);
    if (!found)
      throw new InfraError('backbone_build_failed', `the text backbone written to ${dir} does not read back`);
  }
  const file = (name: typeof TEXT_BACKBONE_JSON | typeof TEXT_BACKBONE_WEIGHTS, contentType: string) => ({
    key: layout.textBackbone(id, name),
    path: join(dir, name),
    contentType,
  });
  return {
    id,
    dir,
    weightsBytes: found.weightsBytes,
    cached,
    files: [
      file(TEXT_BACKBONE_WEIGHTS, 'application/octet-stream'),
      file(TEXT_BACKBONE_JSON, 'application/json'),
    ],
  };
}
