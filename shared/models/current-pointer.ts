import { z } from 'zod';

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
