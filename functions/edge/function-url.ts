// Lambda Function URL entry: configuration from the environment, the backbone loaded during init.
import { handle } from 'hono/aws-lambda';
import { readEnv } from '../../shared/config.js';
import { createEdgeRuntime, envEdgeConfig } from '../../shared/http/index.js';

const runtime = createEdgeRuntime(envEdgeConfig(readEnv(), { requireKeys: true }));
// Top-level await: Lambda runs init at full CPU before the first invocation, so the load is not on its clock.
await runtime.warm();

export const handler = handle(runtime.app);
