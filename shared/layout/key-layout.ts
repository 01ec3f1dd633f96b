/**
 * Where everything lives in the store: the one module that builds (and reads back) Headstart's keys, so the
 * functions, the edge, the local stack and the CLI cannot disagree about one. It imports nothing, so every layer
 * can use it.
 */
/** The top-level prefixes: the bucket's lifecycle rules, event filters and IAM grants are written in these. */
export const prefixes = {
  uploads: 'uploads/',
  features: 'features/',
  datasets: 'datasets/',
  quarantine: 'quarantine/',
  projects: 'projects/',
  training: 'training/',
  models: 'models/',
  backbones: 'backbones/',
  keys: 'keys/',
  /** Copies of photos the API was unsure about, kept for a person to label (off unless a project turns it on). */
  review: 'review/',
} as const;

export type TopPrefix = keyof typeof prefixes;

/** An IAM resource pattern for everything under a top-level prefix: `models/*`. */
export const everythingUnder = (prefix: TopPrefix) => `${prefixes[prefix]}*`;

export const layout = {
  uploadsPrefix: prefixes.uploads,
  projectUploads: (project: string) => `uploads/${project}/`,
  upload: (project: string, label: string, file: string) => `uploads/${project}/${label}/${file}`,
  feature: (backboneId: string, sha256: string, view = 'identity') =>
    view === 'identity' ? `features/${backboneId}/${sha256}` : `features/${backboneId}/${sha256}.${view}`,
  datasetShardPrefix: (project: string) => `datasets/${project}/index/`,
  datasetShard: (project: string, shard: string) => `datasets/${project}/index/${shard}.json`,
  quarantinePrefix: (projectOrUnknown: string) => `quarantine/${projectOrUnknown}/`,
  projectSettings: (project: string) => `projects/${project}/settings.json`,
  trainingPrefix: prefixes.training,
  datasetsPrefix: prefixes.datasets,
  backbonesPrefix: prefixes.backbones,
  trainingRequest: (project: string) => `training/${project}/request.json`,
  trainingState: (project: string) => `training/${project}/state.json`,
  trainingLease: (project: string) => `training/${project}/lease.json`,
  modelsPrefix: (project: string) => `models/${project}/`,
  /** The pointer naming a project's current version. Flipped with a conditional write, never rewritten in place. */
  currentPointer: (project: string) => `models/${project}/current.json`,
  versionPrefix: (project: string, version: string) => `models/${project}/${version}/`,
  versionFile: (project: string, version: string, file: string) => `models/${project}/${version}/${file}`,
  /** Why a version was promoted or held back; beside the versions, never expired. */
  decision: (project: string, version: string) => `models/${project}/decisions/${version}.json`,
  backbone: (id: string, file: string) => `backbones/${id}/${file}`,
  /** Names the backbone new trainings and the edge use unless a project says otherwise. */
  defaultBackbonePointer: 'backbones/default.json',
  /**
   * A text backbone's manifest and weights: beside the image backbones, under their own file names so that
   * listing image backbones (`backbone.json`) never meets one.
   */
  textBackbone: (id: string, file: 'text-backbone.json' | 'text-weights.bin') => `backbones/${id}/${file}`,
  /** Names the text backbone new text projects extract with. */
  defaultTextBackbonePointer: 'backbones/default-text.json',
  apiKeysPrefix: (project: string) => `keys/${project}/`,
  apiKey: (project: string, keyId: string) => `keys/${project}/${keyId}.json`,
  reviewPrefix: (project: string) => `review/${project}/`,
  /** The records that make review items exist; listing this prefix lists the queue. */
  reviewItemsPrefix: (project: string) => `review/${project}/items/`,
  /** A review item is named by its image's sha256, so the same bytes are kept once. */
  reviewItem: (project: string, id: string) => `review/${project}/items/${id}.json`,
  reviewImage: (project: string, id: string) => `review/${project}/images/${id}`,
  /** Where an item's record moves once labelled, so labelling again is a no-op; its image stays (see README). */
  reviewLabelledPrefix: (project: string) => `review/${project}/labelled/`,
  reviewLabelled: (project: string, id: string) => `review/${project}/labelled/${id}.json`,
} as const;

export type TrainingFile = 'request' | 'state' | 'lease';

/** The project and file of a key under `training/` (`training/<project>/<request|state|lease>.json`), if it is one. */
export function parseTrainingKey(key: string): { project: string; file: TrainingFile } | undefined {
  const m = /^training\/([^/]+)\/(request|state|lease)\.json$/.exec(key);
  return m ? { project: m[1]!, file: m[2] as TrainingFile } : undefined;
}

/**
 * The project, id and state of a review record's key (`review/<project>/items/<id>.json` while queued,
 * `review/<project>/labelled/<id>.json` once labelled), if it is one.
 */
export function parseReviewRecordKey(
  key: string,
): { project: string; id: string; state: 'queued' | 'labelled' } | undefined {
  const m = /^review\/([^/]+)\/(items|labelled)\/([^/]+)\.json$/.exec(key);
  return m ? { project: m[1]!, id: m[3]!, state: m[2] === 'items' ? 'queued' : 'labelled' } : undefined;
}
