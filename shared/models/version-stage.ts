/**
 * The object tag that decides how long a model version's files are kept. S3 lifecycle filters match key
 * prefixes, not a middle segment such as `<version>/`, so the stage travels as a tag on every file of a version:
 * `writeVersion` writes them `candidate`, `flipPointer` retags them `promoted` before any pointer names them, and
 * the bucket's lifecycle rule (infra/storage.ts) expires `candidate` files after a number of days. Promoted
 * versions are kept as rollback targets; files written before tags existed carry none and are kept too.
 */
export const VERSION_STAGE_TAG = 'headstart-stage';

export const VERSION_STAGE = {
  /** Written by a training run and not (yet) made current: expires unless promoted. */
  candidate: 'candidate',
  /** Has been current at least once (promoted, forced or rolled back to): kept. */
  promoted: 'promoted',
} as const;

export type VersionStage = (typeof VERSION_STAGE)[keyof typeof VERSION_STAGE];

export const versionStageTags = (stage: VersionStage): Record<string, string> => ({
  [VERSION_STAGE_TAG]: stage,
});
