import type { OpenAPIHono } from '@hono/zod-openapi';

/** What one request carries between the app's middleware and its handlers. */
export type EdgeEnv = { Variables: { body: Uint8Array; startedAt: number } };

/** The edge Hono app; `app.fetch` and `app.request` are what hosts and tests call. */
export type EdgeApp = OpenAPIHono<EdgeEnv>;
