// Lambda Function URL entry: configuration from the environment, the backbone loaded during init.
import { handle } from 'hono/aws-lambda';
import { readEnv } from '../../shared/config.js';
import { createEdgeRuntime, envEdgeConfig } from '../../shared/http/index.js';

const runtime = createEdgeRuntime(envEdgeConfig(readEnv(), { requireKeys: true }));
// Top-level await: Lambda runs init at full CPU before the first invocation, so the load is not on its clock.
await runtime.warm();

const appHandler = handle(runtime.app);

// Lambda freezes the instance once the handler returns: review writes finish first (bounded, never failing).
export const handler: typeof appHandler = async (event, context) => {
  const response = await appHandler(event, context);
  await runtime.reviews.settle();
  return response;
};
