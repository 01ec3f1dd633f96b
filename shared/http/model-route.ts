import type { MiddlewareHandler } from 'hono';
import { modelRoute } from './api-schemas.js';
import type { EdgeApp, EdgeEnv } from './edge-env.js';
import type { ModelCache } from './model-cache.js';

/** `GET /v1/projects/{project}/model`: what the project's current version is, and the last one refused. */
export function registerModelRoute(
  app: EdgeApp,
  deps: { authorize: MiddlewareHandler<EdgeEnv>; models: ModelCache },
): void {
  const { models } = deps;
  app.on('GET', modelRoute.getRoutingPath(), deps.authorize);
  app.openapi(modelRoute, async (c) => {
    const { project } = c.req.valid('param');
    const lease = await models.acquire(project);
    lease.release();
    const { manifest } = lease;
    const refused = models.refusedVersion(project);
    return c.json(
      {
        project,
        version: lease.version,
        createdAt: manifest.createdAt,
        labels: manifest.labels,
        metrics: {
          accuracy: manifest.metrics.accuracy,
          macroF1: manifest.metrics.macroF1,
          n: manifest.metrics.n,
        },
        backbone: {
          id: manifest.backbone.id,
          inputSize: manifest.backbone.inputSize,
          featureDim: manifest.backbone.featureDim,
        },
        head: { type: manifest.head.type, format: manifest.head.format },
        ...(refused ? { refusedVersion: refused } : {}),
      },
      200,
    );
  });
}
