import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type Env, readEnv } from '../../shared/config.js';
import type { RetrainTrigger } from '../../shared/pipeline/retrain-requests.js';
import { createSqsTrigger } from '../../shared/pipeline/sqs-trigger.js';
import { type HeadstartOutputs, parseStackOutputs } from '../../shared/stack-outputs.js';
import { createFsStore, createS3Store, type ObjectStore } from '../../shared/store/index.js';
import { CliError } from './cli-errors.js';

/** Flags every command takes to say which Headstart to talk to. */
export const targetOptions = {
  home: { type: 'string' },
  bucket: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  outputs: { type: 'string' },
  api: { type: 'string' },
  key: { type: 'string' },
  'queue-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const targetHelp = `Where: --home DIR (local store, default $HEADSTART_HOME or ./.headstart) | --bucket B [--endpoint URL]
       [--region R] | --outputs cdk-outputs.json (from \`cdk deploy --outputs-file\`)
       --api URL (prediction API, default http://127.0.0.1:8787 locally or the stack's endpoint) --key K (API key)`;

export interface Target {
  store: ObjectStore;
  /** Base URL of the prediction API. */
  api: string;
  apiKey?: string;
  local: boolean;
  /** The training queue of a deployed stack, to nudge trainings; absent locally (the local stack polls). */
  trigger?: RetrainTrigger;
  env: Env;
}

/** Reads `cdk deploy --outputs-file` JSON (or one stack's flat outputs). */
export function readStackOutputs(path: string): HeadstartOutputs {
  if (!existsSync(path)) {
    throw new CliError(
      `outputs file ${path} does not exist (run \`npx cdk deploy --all --outputs-file ${path}\`)`,
    );
  }
  return parseStackOutputs(JSON.parse(readFileSync(path, 'utf8')));
}

async function queueUrlOf(client: SQSClient, name: string): Promise<string> {
  const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
  if (!QueueUrl) throw new CliError(`the training queue ${name} was not found`);
  return QueueUrl;
}

export function resolveTarget(
  values: Record<string, unknown>,
  envIn: Record<string, string | undefined> = process.env,
): Target {
  const env = readEnv(envIn);
  const outputs: Partial<HeadstartOutputs> =
    typeof values.outputs === 'string' ? readStackOutputs(values.outputs) : {};
  const bucket = (values.bucket as string | undefined) ?? outputs.bucketName ?? env.HEADSTART_BUCKET;
  const region = (values.region as string | undefined) ?? outputs.region ?? env.AWS_REGION;
  const apiKey = (values.key as string | undefined) ?? envIn.HEADSTART_API_KEY;
  if (bucket) {
    const endpoint = (values.endpoint as string | undefined) ?? env.S3_ENDPOINT;
    const queueUrl = (values['queue-url'] as string | undefined) ?? env.HEADSTART_TRAINING_QUEUE_URL;
    const queueName = outputs.trainingQueueName;
    const sqs = new SQSClient({ region });
    const trigger: RetrainTrigger | undefined =
      queueUrl || queueName
        ? {
            async notify(project) {
              const url = queueUrl ?? (await queueUrlOf(sqs, queueName!));
              await createSqsTrigger({ client: sqs, queueUrl: url, delaySeconds: 0 }).notify(project);
            },
          }
        : undefined;
    const api = (values.api as string | undefined) ?? outputs.endpointUrl ?? `http://${env.HOST}:${env.PORT}`;
    return {
      store: createS3Store({ bucket, region, ...(endpoint ? { endpoint, forcePathStyle: true } : {}) }),
      api: api.replace(/\/$/, ''),
      ...(apiKey ? { apiKey } : {}),
      // Without a training queue, something local (`npm start` over the same bucket) runs the trainings.
      local: !trigger,
      ...(trigger ? { trigger } : {}),
      env,
    };
  }
  const home = resolve((values.home as string | undefined) ?? env.HEADSTART_HOME);
  return {
    store: createFsStore({ root: join(home, 'store') }),
    api: ((values.api as string | undefined) ?? `http://${env.HOST}:${env.PORT}`).replace(/\/$/, ''),
    ...(apiKey ? { apiKey } : {}),
    local: true,
    env,
  };
}
