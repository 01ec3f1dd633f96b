import type { MiddlewareHandler } from 'hono';
import { createKeyVerifier } from '../auth/index.js';
import type { ObjectStore } from '../store/index.js';
import { ProjectParamsSchema } from './api-schemas.js';
import type { EdgeEnv } from './edge-env.js';
import { BadRequestError, ForbiddenError, UnauthorizedError } from './http-errors.js';

export interface AuthGateOptions {
  store: ObjectStore;
  /** Require `Authorization: Bearer <key>`; without it only the project name is checked. */
  requireKeys: boolean;
  /** How long a project's key list is trusted before it is read again. */
  ttlMs: number;
  clock: () => number;
}

/** The middleware in front of every project route: project name and key are checked before a byte of the body is read. */
export function createAuthGate(options: AuthGateOptions): MiddlewareHandler<EdgeEnv> {
  const keys = options.requireKeys
    ? createKeyVerifier(options.store, { ttlMs: options.ttlMs, clock: options.clock })
    : undefined;
  return async (c, next) => {
    const parsed = ProjectParamsSchema.safeParse({ project: c.req.param('project') });
    if (!parsed.success) {
      throw new BadRequestError('invalid_param', `project: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    if (keys) {
      const { project } = parsed.data;
      const header = c.req.header('authorization');
      if (!header) {
        throw new UnauthorizedError(
          'missing_api_key',
          `project '${project}' needs an API key: send "Authorization: Bearer <key>" (create one with \`npx headstart keys create --project ${project}\`)`,
        );
      }
      const m = /^Bearer +(\S+) *$/i.exec(header);
      if (!m)
        throw new UnauthorizedError(
          'invalid_authorization',
          'the Authorization header must be "Bearer <key>"',
        );
      const verdict = await keys.check(project, m[1]!);
      if (!verdict.valid) {
        throw new ForbiddenError(
          'invalid_api_key',
          `this API key does not give access to project '${project}'`,
        );
      }
    }
    await next();
  };
}
