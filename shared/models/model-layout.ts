import { z } from 'zod';

/**
 * Where everything lives in the store. One module owns the layout so that the functions, the edge and the CLI
 * cannot disagree about a key.
 */
export const layout = {
  uploadsPrefix: 'uploads/',
  projectUploads: (project: string) => `uploads/${project}/`,
  feature: (backboneId: string, sha256: string, view = 'identity') =>
    view === 'identity' ? `features/${backboneId}/${sha256}` : `features/${backboneId}/${sha256}.${view}`,
  datasetShardPrefix: (project: string) => `datasets/${project}/index/`,
  datasetShard: (project: string, shard: string) => `datasets/${project}/index/${shard}.json`,
  quarantinePrefix: (projectOrUnknown: string) => `quarantine/${projectOrUnknown}/`,
  projectSettings: (project: string) => `projects/${project}/settings.json`,
  trainingRequest: (project: string) => `training/${project}/request.json`,
  trainingState: (project: string) => `training/${project}/state.json`,
  trainingLease: (project: string) => `training/${project}/lease.json`,
  modelsPrefix: (project: string) => `models/${project}/`,
  /** The pointer naming a project's current version. Flipped with a conditional write, never rewritten in place. */
  currentPointer: (project: string) => `models/${project}/current.json`,
  versionPrefix: (project: string, version: string) => `models/${project}/${version}/`,
  versionFile: (project: string, version: string, file: string) => `models/${project}/${version}/${file}`,
  backbone: (id: string, file: string) => `backbones/${id}/${file}`,
  /** Names the backbone new trainings and the edge use unless a project says otherwise. */
  defaultBackbonePointer: 'backbones/default.json',
  apiKeysPrefix: (project: string) => `keys/${project}/`,
  apiKey: (project: string, keyId: string) => `keys/${project}/${keyId}.json`,
} as const;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** `models/<project>/current.json` */
export const currentPointerSchema = z.object({
  project: z.string(),
  version: z.string(),
  /** sha256 of the version's manifest.json, so a reader can tell a swapped manifest from the one promoted. */
  manifestSha256: sha256,
  promotedAt: z.string().datetime(),
  reason: z.enum(['promoted', 'forced', 'rollback']),
});
export type CurrentPointer = z.infer<typeof currentPointerSchema>;

/** `models/<project>/<version>/manifest.json`: immutable once written. */
export const modelManifestSchema = z.object({
  schemaVersion: z.literal(1),
  project: z.string(),
  version: z.string(),
  createdAt: z.string().datetime(),
  /** Output order of the head. */
  labels: z.array(z.string()).min(2),
  backbone: z.object({
    id: z.string(),
    weightsSha256: sha256,
    inputSize: z.number().int().positive(),
    featureDim: z.number().int().positive(),
  }),
  head: z.object({
    /**
     * 'tfjs-layers': a head on the backbone's pooled feature (head.json, head.bin). 'headstart-finetuned-top': a
     * fine-tuned top (top.json, top.bin) on the unpooled activation of a trunk; `backbone` then names the trunk.
     */
    format: z.enum(['tfjs-layers', 'headstart-finetuned-top']),
    /** File name within the version directory to its sha256; the edge refuses a head whose bytes differ. */
    files: z.record(z.string(), sha256),
    /** The classifier's kind ('softmax', 'mlp'); a fine-tuned top says so in `format`. */
    type: z.string(),
  }),
  metrics: z.object({
    accuracy: z.number(),
    macroF1: z.number(),
    n: z.number().int().nonnegative(),
  }),
  datasetSnapshot: sha256,
  training: z.record(z.string(), z.unknown()),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;
