import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { UiError } from './ui-errors.js';

/**
 * What keeps other web pages out of the dashboard. It answers only requests addressed to a loopback name (a DNS
 * rebinding page arrives with its own host name), every state-changing request is a POST carrying the page's
 * CSRF token (which other origins cannot read) from a same-origin page, and every response forbids sniffing,
 * framing and anything but this origin's scripts, styles and images.
 */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; media-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface UiGuard {
  /** The token every POST must carry, in the `_csrf` form field or the `x-csrf-token` header. */
  token: string;
  middleware: MiddlewareHandler;
}

function hostnameOf(host: string | undefined): string {
  if (!host) return '';
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function presentedToken(c: Context): Promise<string | undefined> {
  const header = c.req.header('x-csrf-token');
  if (header) return header;
  const type = c.req.header('content-type') ?? '';
  if (type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data')) {
    const field = (await c.req.parseBody())._csrf;
    return typeof field === 'string' ? field : undefined;
  }
  return undefined;
}

function checkOrigin(c: Context): void {
  const site = c.req.header('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') {
    throw new UiError(
      'cross_site_request',
      `refused a ${site} request: the dashboard takes actions only from its own pages`,
      {
        status: 403,
      },
    );
  }
  const origin = c.req.header('origin');
  if (origin && origin !== 'null' && new URL(origin).host !== c.req.header('host')) {
    throw new UiError('cross_site_request', `refused a request from ${origin}`, { status: 403 });
  }
}

export function createUiGuard(options: { token?: string } = {}): UiGuard {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const middleware: MiddlewareHandler = async (c, next) => {
    if (!LOOPBACK.has(hostnameOf(c.req.header('host')))) {
      throw new UiError(
        'not_loopback',
        'the dashboard answers only at 127.0.0.1 or localhost (this request named another host)',
        { status: 421 },
      );
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      if (c.req.method !== 'POST')
        throw new UiError('method_not_allowed', 'only GET and POST', { status: 405 });
      checkOrigin(c);
      if (!sameToken(await presentedToken(c), token)) {
        throw new UiError(
          'invalid_csrf_token',
          'this form is out of date (or not from the dashboard); reload the page and try again',
          {
            status: 403,
          },
        );
      }
    }
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!c.res.headers.has(name)) c.res.headers.set(name, value);
    }
  };
  return { token, middleware };
}
