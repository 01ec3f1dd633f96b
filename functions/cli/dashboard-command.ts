import { storeBackboneLoader, storeBackboneProvider } from '../../shared/http/index.js';
import { createUiApp } from '../../shared/ui/index.js';
import type { Target } from './cli-context.js';
import { UsageError } from './cli-errors.js';
import { bindApiPort } from './local-api.js';
import { inProcessPredictor, withDashboard } from './ui-wiring.js';

/** Loopback only: the dashboard acts with the credentials of whoever runs it, so nobody else may reach it. */
const HOST = '127.0.0.1';
export const DEFAULT_DASHBOARD_PORT = 8788;

export function dashboardPort(raw: unknown): number {
  if (raw === undefined) return DEFAULT_DASHBOARD_PORT;
  const port = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a port number (0 picks a free one), not '${String(raw)}'`);
  }
  return port;
}

/**
 * `headstart dashboard`: the same pages `npm start` serves under /ui/, on 127.0.0.1, over the target's store (a
 * local home, or a deployed bucket with the user's own AWS credentials, which stay in this process). Trainings
 * it asks for go to the stack's training queue; Try it loads the store's backbone here on first use.
 */
export async function startDashboard(
  target: Target,
  options: { port: number },
): Promise<{ url: string; close(): Promise<void> }> {
  const listener = await bindApiPort({ port: options.port, host: HOST });
  const ui = createUiApp({
    store: target.store,
    ...(target.trigger ? { trigger: target.trigger } : {}),
    predict: inProcessPredictor({
      store: target.store,
      backbone: storeBackboneProvider(target.store),
      backboneById: storeBackboneLoader(target.store),
    }),
    maxUploadBytes: target.env.HEADSTART_MAX_UPLOAD_BYTES,
  });
  listener.attach(withDashboard(ui));
  return { url: `${listener.url}/ui/`, close: () => listener.close() };
}
