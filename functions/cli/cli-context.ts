import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type Env, readEnv } from '../../shared/config.js';
import { type LiveStack, readLiveStack } from '../../shared/local/stack-lock.js';
import type { RetrainTrigger } from '../../shared/pipeline/retrain-requests.js';
import { createSqsTrigger } from '../../shared/pipeline/sqs-trigger.js';
import { type HeadstartOutputs, parseStackOutputs } from '../../shared/stack-outputs.js';
import { type ObjectStore, openStore } from '../../shared/store/index.js';
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
       --api URL (prediction API, default: the home's running npm start, else http://127.0.0.1:8787 locally, or
       the stack's endpoint) --key K (API key)`;

export interface Target {
  store: ObjectStore;
  /** Base URL of the prediction API. */
  api: string;
  apiKey?: string;
  local: boolean;
  /** The local home, when the store is the file-system one under it. */
  home?: string;
  /** The bucket (and its S3-compatible endpoint, if any), when the store is S3. */
  bucket?: string;
  endpoint?: string;
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

/**
 * `requireStore`: a home without a store is an error rather than a new empty store, so a mistyped `--home`
 * is noticed instead of answering for a store that does not exist.
 */
export function resolveTarget(
  values: Record<string, unknown>,
  envIn: Record<string, string | undefined> = process.env,
  options: { requireStore?: boolean } = {},
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
      store: openStore({ kind: 's3', bucket, region, ...(endpoint ? { endpoint } : {}) }),
      api: api.replace(/\/$/, ''),
      ...(apiKey ? { apiKey } : {}),
      // Without a training queue, something local (`npm start` over the same bucket) runs the trainings.
      local: !trigger,
      ...(trigger ? { trigger } : {}),
      bucket,
      ...(endpoint ? { endpoint } : {}),
      env,
    };
  }
  const home = resolve((values.home as string | undefined) ?? env.HEADSTART_HOME);
  if (options.requireStore && !existsSync(join(home, 'store'))) {
    throw new CliError(
      `${home} has no Headstart store (no ${join(home, 'store')}): \`HEADSTART_HOME=${home} npm start\` creates one there, or pass the --home (or HEADSTART_HOME) of an existing one`,
      { exitCode: 2 },
    );
  }
  // The home's running `npm start` says where its API listens (PORT may have moved it); a stack on another host
  // (a home on a shared disk) is not reachable at the address it recorded.
  const live = readLiveStack({ home });
  const liveUrl = live?.host === hostname() ? live.url : undefined;
  return {
    store: openStore({ kind: 'fs', root: join(home, 'store') }),
    api: ((values.api as string | undefined) ?? liveUrl ?? `http://${env.HOST}:${env.PORT}`).replace(
      /\/$/,
      '',
    ),
    ...(apiKey ? { apiKey } : {}),
    local: true,
    home,
    env,
  };
}

/**
 * The local stack that will pick up uploads and training requests: the one holding this home, or, against a
 * bucket, one on this machine's home serving that bucket. Undefined when none runs (or none can be seen).
 */
export function liveStackOf(target: Target): LiveStack | undefined {
  if (target.home) return readLiveStack({ home: target.home });
  const here = readLiveStack({ home: resolve(target.env.HEADSTART_HOME) });
  return here && here.store === target.store.description ? here : undefined;
}

const describeStack = (s: LiveStack) => `pid ${s.pid}${s.url ? `, API ${s.url}` : ''}`;
const startHint = (target: Target) =>
  target.home
    ? `HEADSTART_HOME=${target.home} npm start`
    : `HEADSTART_BUCKET=${target.bucket}${target.endpoint ? ` S3_ENDPOINT=${target.endpoint}` : ''} npm start`;

/** What happens to photos just uploaded: who extracts and trains them, or how to start something that will. */
export function afterUploadLine(target: Target): string {
  if (target.trigger) return 'the stack extracts features and retrains after a quiet period';
  const live = liveStackOf(target);
  if (live)
    return `the running Headstart (${describeStack(live)}) extracts features and retrains after a quiet period; \`headstart train --wait\` trains now`;
  if (target.home)
    return `no Headstart is running on ${target.home}: run \`${startHint(target)}\` to extract features and train (the photos wait in the store until then)`;
  return `the photos are in ${target.store.description}: the deployed stack's notifications, or \`${startHint(target)}\`, extract features and retrain after a quiet period`;
}

/**
 * Before a training request: with `wait`, a local home with no running stack fails at once (nothing would ever
 * answer); against a bucket with no training queue, says what the wait is for. Returns a note for stderr.
 */
export function checkTrainingRunner(target: Target, options: { wait: boolean }): string | undefined {
  if (target.trigger || liveStackOf(target)) return undefined;
  if (target.home) {
    if (options.wait) {
      throw new CliError(
        `no Headstart is running on ${target.home}, so nothing would train: start it with \`${startHint(target)}\`, then run this again`,
      );
    }
    return `no Headstart is running on ${target.home}: the request waits until \`${startHint(target)}\``;
  }
  return options.wait
    ? `waiting for a Headstart on ${target.store.description} to train (\`${startHint(target)}\`); without a training queue (--outputs or --queue-url of a deployed stack) nothing here can tell whether one runs`
    : undefined;
}
