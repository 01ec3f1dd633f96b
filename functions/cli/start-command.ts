import { resolve } from 'node:path';
import { calibrationPhotosDir } from '../../shared/backbone/index.js';
import { readEnv } from '../../shared/config.js';
import { startLocalStack } from '../../shared/local/local-stack.js';
import { acquireStackLock, StackLockError } from '../../shared/local/stack-lock.js';
import { formatTrainOutcome } from '../../shared/pipeline/train-outcome-text.js';
import { openStore, StoreError, type StoreSpec, s3StoreOptions } from '../../shared/store/index.js';
import { assertBucketExists } from '../../shared/store/s3-store.js';
import { CliError } from './cli-errors.js';
import { type ApiPort, bindApiPort, startApiServer } from './local-api.js';

/**
 * `headstart start` / `npm start`: the local stack on the embedded default, until Ctrl-C. Refusals come before
 * any side effect, in order: another live stack on this home, the port, a missing bucket.
 */
export async function startCommand(): Promise<void> {
  const env = readEnv();
  const home = resolve(env.HEADSTART_HOME);
  const spec: StoreSpec = env.HEADSTART_BUCKET
    ? {
        kind: 's3',
        bucket: env.HEADSTART_BUCKET,
        region: env.AWS_REGION,
        ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
      }
    : { kind: 'fs', root: resolve(home, 'store') };
  // The store's own description, which is what `liveStackOf` compares a target's store with.
  const { description } = openStore(spec);
  let lock: ReturnType<typeof acquireStackLock>;
  try {
    lock = acquireStackLock({ home, store: description });
  } catch (err) {
    if (err instanceof StackLockError) throw new CliError(err.message);
    throw err;
  }
  const log = (line: string) => console.log(`[headstart] ${line}`);
  let listener: ApiPort | undefined;
  try {
    listener = await bindApiPort({ port: env.PORT, host: env.HOST });
    if (spec.kind === 's3') {
      await assertBucketExists(s3StoreOptions(spec)).catch((err) => {
        throw err instanceof StoreError && err.code === 'no_such_bucket' ? new CliError(err.message) : err;
      });
    }
    const api = listener;
    log(`store: ${description}`);
    const stack = await startLocalStack({
      store: spec,
      photosDir: calibrationPhotosDir(),
      quietSeconds: env.HEADSTART_RETRAIN_QUIET_SECONDS,
      scanIntervalMs: env.HEADSTART_SCAN_SECONDS * 1000,
      log,
      serveApi: (deps) =>
        startApiServer({
          ...deps,
          listener: api,
          requireKeys: env.HEADSTART_REQUIRE_KEYS ?? false,
          maxUploadBytes: env.HEADSTART_MAX_UPLOAD_BYTES,
          log,
        }),
      onUpload: (o) => {
        if (o.status === 'indexed') log(`indexed ${o.key} as '${o.label}'`);
        else if (o.status === 'quarantined') log(`set aside ${o.key}: ${o.code}: ${o.message}`);
        else if (o.status === 'removed') log(`removed ${o.key} from the dataset`);
      },
      onTraining: (o) => {
        if (o.status === 'promoted' || o.status === 'candidate' || o.status === 'refused') {
          log(`training of ${o.project}: ${formatTrainOutcome(o)}`);
        }
      },
    });
    lock.update({ url: stack.url });
    log(`backbone: ${stack.backboneId}`);
    log(`API: ${stack.url}  (OpenAPI at ${stack.url}/openapi.json)`);
    log(`add photos with: npx headstart upload <dir> --project <name>   (folders under <dir> are labels)`);
    let signals = 0;
    const onSignal = () => {
      signals++;
      if (signals > 1) {
        // A second Ctrl-C: leave at once. Nothing is lost; an abandoned training runs again at the next start.
        lock.release();
        process.exit(130);
      }
      log('stopping... (Ctrl-C again to quit at once)');
      void stack.stop().finally(() => {
        lock.release();
        process.exit(0);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  } catch (err) {
    await listener?.close();
    lock.release();
    throw err;
  }
}
