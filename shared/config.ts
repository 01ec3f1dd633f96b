import { z } from 'zod';
import { errorKind, HeadstartError } from './headstart-error.js';

/**
 * The one place that reads the environment. Everything else takes its configuration as arguments, so the
 * same code runs in Lambda, at the edge (which has no environment: its entry builds a Config from baked-in
 * constants) and locally.
 */
const envSchema = z.object({
  /** Local store root; used when no bucket is set. */
  HEADSTART_HOME: z.string().default('./.headstart'),
  HEADSTART_BUCKET: z.string().optional(),
  /** An S3-compatible endpoint (moto_server, MinIO, ...); unset means AWS S3. */
  S3_ENDPOINT: z.string().url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8787),
  HOST: z.string().default('127.0.0.1'),
  /** Backbone id to use; unset means the store's `backbones/default.json`. */
  HEADSTART_BACKBONE: z.string().optional(),
  HEADSTART_MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
  HEADSTART_MAX_PIXELS: z.coerce.number().int().positive().default(40_000_000),
  /** Quiet window before a burst of uploads becomes one training. */
  HEADSTART_RETRAIN_QUIET_SECONDS: z.coerce.number().min(0).max(900).default(30),
  /**
   * With a bucket, how often the local stack lists uploads/ for new, replaced or deleted photos (one LIST with
   * ETags, no GET; one page per 1,000 photos). The file-system store is watched instead.
   */
  HEADSTART_SCAN_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  HEADSTART_TRAINING_QUEUE_URL: z.string().optional(),
  /** Where tfjs-backend-wasm's .wasm files are (set by bundles; unset means next to the package). */
  HEADSTART_WASM_DIR: z.string().optional(),
  /** How often the API re-checks a project's current version (a conditional GET). */
  HEADSTART_POINTER_TTL_SECONDS: z.coerce.number().positive().default(30),
  /** Request bodies over this get 413. */
  HEADSTART_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(6 * 1024 * 1024),
  /** Heads kept loaded per API instance. */
  HEADSTART_HEAD_CACHE_SIZE: z.coerce.number().int().positive().default(32),
  HEADSTART_REQUIRE_KEYS: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
});

export type Env = z.infer<typeof envSchema>;

/** The environment (or a file standing for it) cannot configure Headstart; a command stops with exit code 2. */
export class ConfigError extends errorKind(HeadstartError, {
  name: 'ConfigError',
  code: 'invalid_config',
  exitCode: 2,
}) {}

export function readEnv(env: Record<string, string | undefined> = process.env): Env {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`environment variable ${issue?.path.join('.')}: ${issue?.message}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
