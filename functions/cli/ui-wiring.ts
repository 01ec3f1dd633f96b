import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import {
  type BackboneByIdProvider,
  type BackboneProvider,
  createApp,
  type ModelCache,
} from '../../shared/http/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import type { UiPredictor } from '../../shared/ui/index.js';

/**
 * The dashboard's Try it, answered in process by an edge app of its own: no API key (the dashboard is already
 * the store's owner) and no review copies (a photo a person tries is not an end user's). It can share the
 * API's model cache, so a version loaded for one is loaded for both.
 */
export function inProcessPredictor(deps: {
  store: ObjectStore;
  backbone: BackboneProvider;
  backboneById?: BackboneByIdProvider;
  models?: ModelCache;
}): UiPredictor {
  const app = createApp({
    store: deps.store,
    backbone: deps.backbone,
    ...(deps.backboneById ? { backboneById: deps.backboneById } : {}),
    ...(deps.models ? { models: deps.models } : {}),
    config: { requireKeys: false, reviewMaxPerMinute: 0, pointerTtlSeconds: 1 },
  });
  return async ({ project, body, contentType }) =>
    app.request(`/v1/projects/${project}/predict`, {
      method: 'POST',
      body: body as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': contentType },
    });
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** One listener for a port that serves the dashboard under /ui/ (and / redirects there) and `other` elsewhere. */
export function withDashboard(
  ui: { fetch: (r: Request) => Response | Promise<Response> },
  other?: Listener,
): Listener {
  const dashboard = getRequestListener(ui.fetch);
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/ui' || path.startsWith('/ui/')) return dashboard(req, res);
    if (path === '/' && req.method === 'GET') {
      res.writeHead(302, { location: '/ui/' });
      res.end();
      return;
    }
    if (other) return other(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: the dashboard is under /ui/\n');
  };
}
