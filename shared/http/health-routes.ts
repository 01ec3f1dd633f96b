import { messageOf } from '../headstart-error.js';
import { layout } from '../layout/index.js';
import type { ObjectStore } from '../store/index.js';
import { healthRoute, readyRoute } from './api-schemas.js';
import type { EdgeApp } from './edge-env.js';
import { ServiceUnavailableError } from './http-errors.js';
import type { ModelCache } from './model-cache.js';

/** `GET /healthz` (the process answers) and `GET /readyz` (the backbone is loaded and the store reachable). */
export function registerHealthRoutes(app: EdgeApp, deps: { models: ModelCache; store: ObjectStore }): void {
  app.openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200));

  app.openapi(readyRoute, async (c) => {
    const [backbone, reachable] = await Promise.allSettled([
      deps.models.backbone(),
      deps.store.head(layout.defaultBackbonePointer),
    ]);
    if (backbone.status === 'rejected' || reachable.status === 'rejected') {
      const problems: string[] = [];
      if (backbone.status === 'rejected')
        problems.push(`backbone not loaded (${messageOf(backbone.reason)})`);
      if (reachable.status === 'rejected')
        problems.push(`store unreachable (${messageOf(reachable.reason)})`);
      throw new ServiceUnavailableError('not_ready', `not ready: ${problems.join('; ')}`, {
        retryAfterSeconds: 2,
      });
    }
    return c.json(
      { status: 'ready' as const, backbone: backbone.value.manifest.id, store: 'reachable' as const },
      200,
    );
  });
}
