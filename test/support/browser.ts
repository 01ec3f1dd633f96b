import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium, or the one CHROMIUM_PATH names; the browser tests skip with this reason without one. */
export const chromiumPath = [
  process.env.CHROMIUM_PATH,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
].find((p): p is string => !!p && existsSync(p));
export const browserSkipReason = chromiumPath
  ? ''
  : 'no chromium found (apt-get install chromium, or set CHROMIUM_PATH); browser tests are skipped';
if (browserSkipReason) console.warn(`[headstart tests] ${browserSkipReason}`);

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath!,
    args: [
      '--no-sandbox',
      // A synthetic camera, granted without a prompt, for the Try it page's webcam.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
    ],
  });
}

/** Serves a fetch handler on 127.0.0.1 at a free port, as `headstart dashboard` does. */
export async function serveOnLoopback(
  fetch: (r: Request) => Response | Promise<Response>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
