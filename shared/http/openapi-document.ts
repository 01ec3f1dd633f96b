import type { EdgeApp } from './edge-env.js';

/** `GET /openapi.json`: the document of every route registered before the first request for it. */
export function registerOpenApiDocument(app: EdgeApp): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A project API key (`npx headstart keys create --project <project>`).',
  });
  let document: unknown;
  app.get('/openapi.json', (c) => {
    document ??= app.getOpenAPIDocument({
      openapi: '3.0.3',
      info: {
        title: 'Headstart edge API',
        version: '1',
        description:
          'Predictions from a project\'s current model. Errors are `{"error": {"code", "message"}}`.',
      },
    });
    return c.json(document as Record<string, unknown>, 200);
  });
}
