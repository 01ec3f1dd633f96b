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

/** `models/<project>/<version>/manifest.json` is described by version-format.ts, its only owner. */
