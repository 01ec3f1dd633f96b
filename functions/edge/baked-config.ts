import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import type { BakedEdgeConfig } from '../../shared/http/index.js';

/**
 * Build-time constants for the Lambda@Edge bundle, which has no environment variables. esbuild's `define`
 * replaces them, e.g. `define: { __HEADSTART_BUCKET__: JSON.stringify('my-bucket') }`; when a constant is not
 * defined (tests, unbundled runs) it reads as undefined.
 */
declare const __HEADSTART_BUCKET__: string | undefined;
declare const __HEADSTART_REGION__: string | undefined;
declare const __HEADSTART_BACKBONE__: string | undefined;
declare const __HEADSTART_REQUIRE_KEYS__: boolean | undefined;
declare const __HEADSTART_POINTER_TTL_SECONDS__: number | undefined;
/** Where the tfjs .wasm files are; a relative path is resolved against the bundle's directory. */
declare const __HEADSTART_WASM_DIR__: string | undefined;

const bakedSchema = z.object({
  bucket: z.string().min(3).optional(),
  region: z.string().min(1).optional(),
  backboneId: z.string().min(1).optional(),
  requireKeys: z.boolean().optional(),
  pointerTtlSeconds: z.number().positive().optional(),
  wasmDir: z.string().min(1).optional(),
});

/** The constants baked into this bundle (all undefined when not built with them). */
export function bakedEdgeConfig(moduleDir?: string): BakedEdgeConfig {
  const raw = {
    bucket: typeof __HEADSTART_BUCKET__ === 'undefined' ? undefined : __HEADSTART_BUCKET__,
    region: typeof __HEADSTART_REGION__ === 'undefined' ? undefined : __HEADSTART_REGION__,
    backboneId: typeof __HEADSTART_BACKBONE__ === 'undefined' ? undefined : __HEADSTART_BACKBONE__,
    requireKeys: typeof __HEADSTART_REQUIRE_KEYS__ === 'undefined' ? undefined : __HEADSTART_REQUIRE_KEYS__,
    pointerTtlSeconds:
      typeof __HEADSTART_POINTER_TTL_SECONDS__ === 'undefined'
        ? undefined
        : __HEADSTART_POINTER_TTL_SECONDS__,
    wasmDir: typeof __HEADSTART_WASM_DIR__ === 'undefined' ? undefined : __HEADSTART_WASM_DIR__,
  };
  const baked = bakedSchema.parse(raw);
  if (baked.wasmDir && moduleDir && !isAbsolute(baked.wasmDir))
    baked.wasmDir = join(moduleDir, baked.wasmDir);
  return baked;
}
