import { join } from 'node:path';
import { readEnv } from '../../shared/config.js';
import { startLocalStack } from '../../shared/local/local-stack.js';
import { createFsStore, createS3Store } from '../../shared/store/index.js';
import { fixturePhotosDir, startApiServer } from './local-api.js';

/** `headstart start` / `npm start`: the local stack on the embedded default, until Ctrl-C. */
export async function startCommand(): Promise<void> {
  const env = readEnv();
  const store = env.HEADSTART_BUCKET
    ? createS3Store({
        bucket: env.HEADSTART_BUCKET,
        region: env.AWS_REGION,
        ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, forcePathStyle: true } : {}),
      })
    : createFsStore({ root: join(env.HEADSTART_HOME, 'store') });
  const log = (line: string) => console.log(`[headstart] ${line}`);
  log(`store: ${store.description}`);
  const stack = await startLocalStack({
    store,
    photosDir: fixturePhotosDir(),
    quietSeconds: env.HEADSTART_RETRAIN_QUIET_SECONDS,
    log,
    serveApi: (deps) =>
      startApiServer({
        ...deps,
        port: env.PORT,
        host: env.HOST,
        requireKeys: env.HEADSTART_REQUIRE_KEYS ?? false,
        log,
      }),
    onUpload: (o) => {
      if (o.status === 'indexed') log(`indexed ${o.key} as '${o.label}'`);
      else if (o.status === 'quarantined') log(`set aside ${o.key}: ${o.code}: ${o.message}`);
      else if (o.status === 'removed') log(`removed ${o.key} from the dataset`);
    },
    onTraining: (o) => {
      if (o.status === 'promoted' || o.status === 'candidate') {
        log(
          `trained ${o.project} ${o.version} in ${o.seconds.toFixed(1)} s: validation accuracy ${o.metrics.accuracy.toFixed(3)}, macro-F1 ${o.metrics.macroF1.toFixed(3)} -> ${o.status} (${o.reason})`,
        );
      } else if (o.status === 'refused') log(`training of ${o.project} refused: ${o.message}`);
    },
  });
  log(`backbone: ${stack.backboneId}`);
  log(`API: ${stack.url}  (OpenAPI at ${stack.url}/openapi.json)`);
  log(`add photos with: npx headstart upload <dir> --project <name>   (folders under <dir> are labels)`);
  const stop = async () => {
    log('stopping...');
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
