import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { STACK_OUTPUTS } from '../shared/stack-outputs.js';
import { type BackboneAsset, buildBackboneAsset } from './backbone-asset.js';
import { deployDefaultBackbone } from './backbone-deployment.js';
import { type BuiltBundle, buildBundles, bundleSpec, describeBundle } from './bundling.js';
import { createEdge, type Edge } from './edge.js';
import { type InfraConfig, readInfraConfig } from './infra-config.js';
import { InfraConfigError } from './infra-errors.js';
import { acknowledge } from './nag.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import { createStorage, type Storage } from './storage.js';
import { buildTextBackboneAsset, type TextBackboneAsset } from './text-backbone-asset.js';

export interface HeadstartAppOptions {
  /** CDK context (tests pass cdk.json's); the CLI passes it through the environment. */
  context?: Record<string, unknown>;
  outdir?: string;
  /** Overrides what context and environment say. */
  config?: InfraConfig;
  /** Where bundles are built (default: `<outdir>/.headstart-build`). */
  buildRoot?: string;
  /** Bundles built earlier (tests synthesize several variants from one build); missing ones are built. */
  bundles?: readonly BuiltBundle[];
  /** Where the built default backbone is cached (default: the OS temp dir). */
  backboneCache?: string;
  /** Synth-time progress: bundle sizes and the backbone. Default: stderr. */
  log?: (line: string) => void;
}

export interface HeadstartApp {
  app: App;
  config: InfraConfig;
  /** Bucket, queues, functions, distribution, outputs. */
  main: Stack;
  /** The us-east-1 stack holding the Lambda@Edge function, when the app's region is another one. */
  edgeStack?: Stack;
  bundles: BuiltBundle[];
  backbone: BackboneAsset;
  textBackbone: TextBackboneAsset;
  storage: Storage;
  pipeline: Pipeline;
  edge: Edge;
  alarmTopic: sns.Topic;
}

const EDGE_REGION = 'us-east-1';

/** IAM role names are account-wide: the region keeps two deployments of the same stack name apart. */
export function edgeRoleName(config: InfraConfig): string {
  const name = `${config.stackName}-edge-${config.region}`;
  if (name.length > 64) throw new InfraConfigError(`edge role name ${name} is over IAM's 64 characters`);
  return name;
}

/** Constructs that CDK itself adds for custom resources, and why their findings are acceptable. */
function acknowledgeCdkInternals(stack: Stack): void {
  const notifications = stack.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
  if (notifications) {
    acknowledge(notifications, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        "CDK's bucket-notification handler (runs only during deployment) logs through the AWS managed basic execution policy; its S3 permission is scoped to this bucket.",
    });
  }
  const awsCustomResource = stack.node.tryFindChild('AWS679f53fac002430cb0da5b7982bd2287');
  if (awsCustomResource) {
    acknowledge(
      awsCustomResource,
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          "CDK's AwsCustomResource handler (copies the default backbone during deployment) logs through the AWS managed basic execution policy; its S3 permissions name the exact objects.",
      },
      {
        id: 'AwsSolutions-L1',
        reason:
          "CDK's AwsCustomResource handler picks its own Node.js runtime; it runs only during deployment.",
      },
    );
  }
}

/**
 * Builds the app: bundles (local esbuild, no Docker), the default backbone asset, the stacks, and cdk-nag's
 * AwsSolutions checks on all of them. Synthesizes offline: the region is explicit and nothing is looked up.
 */
export async function createHeadstartApp(options: HeadstartAppOptions = {}): Promise<HeadstartApp> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const app = new App({
    ...(options.context ? { context: options.context } : {}),
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
  const config = options.config ?? readInfraConfig((k) => app.node.tryGetContext(k));
  const env = { region: config.region, ...(config.account ? { account: config.account } : {}) };

  const edgeName = config.edge === 'lambda-edge' ? 'edge' : 'function-url';
  const wanted = (['precompute', 'train', edgeName] as const).map((n) => bundleSpec(n));
  const prebuilt = options.bundles ?? [];
  const built = await buildBundles(
    wanted.filter((s) => !prebuilt.some((b) => b.name === s.name)),
    { outRoot: options.buildRoot ?? join(app.outdir, '.headstart-build') },
  );
  for (const b of built) log(`[headstart] bundle ${describeBundle(b)}`);
  const bundles = wanted.map((s) => [...built, ...prebuilt].find((b) => b.name === s.name)!);
  const byName = (name: string) => bundles.find((b) => b.name === name)!;

  const backbone = await buildBackboneAsset({
    cacheRoot: options.backboneCache ?? join(tmpdir(), 'headstart-backbones'),
  });
  log(
    `[headstart] default backbone ${backbone.id}: ${(backbone.weightsBytes / 1024).toFixed(0)} KB of weights${backbone.cached ? ' (cached)' : ''}`,
  );
  const textBackbone = await buildTextBackboneAsset({
    cacheRoot: options.backboneCache ?? join(tmpdir(), 'headstart-backbones'),
  });
  log(
    `[headstart] text backbone ${textBackbone.id}: ${(textBackbone.weightsBytes / 1024).toFixed(0)} KB of weights${textBackbone.cached ? ' (cached)' : ''}`,
  );
  log(
    `[headstart] fine-tuning trunk ${backbone.trunk.id}: ${(backbone.trunk.weightsBytes / 1024).toFixed(0)} KB of weights, with its pretrained top block${backbone.trunk.cached ? ' (cached)' : ''}`,
  );

  const edgeStack =
    config.edge === 'lambda-edge' && config.region !== EDGE_REGION
      ? new Stack(app, `${config.stackName}Edge`, {
          env: { ...env, region: EDGE_REGION },
          description: `Headstart ${config.stackName}: the Lambda@Edge function (CloudFront requires us-east-1)`,
        })
      : undefined;
  const main = new Stack(app, config.stackName, {
    env,
    description: `Headstart ${config.stackName}: photo bucket, feature precompute and training pipeline, prediction API`,
  });

  const storage = createStorage(main, {
    candidateRetentionDays: config.candidateRetentionDays,
    reviewRetentionDays: config.reviewRetentionDays,
  });
  const alarmTopic = new sns.Topic(main, 'AlarmTopic', {
    displayName: 'Headstart alarms',
    enforceSSL: true,
  });
  if (config.alarmEmail) alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
  const backboneDeployment = deployDefaultBackbone(main, {
    bucket: storage.bucket,
    backbone,
    textBackbone,
  });
  const pipeline = createPipeline(main, {
    bucket: storage.bucket,
    precompute: byName('precompute'),
    train: byName('train'),
    retrainQuietSeconds: config.retrainQuietSeconds,
    alarmTopic,
    after: backboneDeployment,
  });
  const edge = createEdge(main, {
    variant: config.edge,
    bucket: storage.bucket,
    logBucket: storage.logBucket,
    bundle: byName(edgeName),
    region: config.region,
    ...(edgeStack ? { edgeStack } : {}),
    edgeRoleName: edgeRoleName(config),
  });

  const out = (key: string, value: string, description: string) =>
    new CfnOutput(main, key, { value, description });
  out(STACK_OUTPUTS.bucketName, storage.bucket.bucketName, 'Upload photos to uploads/<project>/<label>/');
  out(STACK_OUTPUTS.endpointUrl, edge.endpointUrl, 'Base URL of the prediction API');
  out(STACK_OUTPUTS.region, config.region, 'Region of the bucket, queues and functions');
  out(STACK_OUTPUTS.edgeVariant, config.edge, 'How predictions are served');
  out(
    STACK_OUTPUTS.uploadsQueueName,
    pipeline.uploadsQueue.queueName,
    'Upload events awaiting feature precompute',
  );
  out(STACK_OUTPUTS.trainingQueueName, pipeline.trainingQueue.queueName, 'Training nudges');
  out(
    STACK_OUTPUTS.uploadsDeadLetterQueueName,
    pipeline.uploadsDeadLetterQueue.queueName,
    'Upload events that failed repeatedly',
  );
  out(
    STACK_OUTPUTS.trainingDeadLetterQueueName,
    pipeline.trainingDeadLetterQueue.queueName,
    'Training nudges that failed repeatedly',
  );
  out(STACK_OUTPUTS.alarmTopicArn, alarmTopic.topicArn, 'Subscribe to hear about dead-lettered work');
  out(
    STACK_OUTPUTS.defaultBackboneId,
    backbone.id,
    "This release's built-in backbone; a bucket that already names a default keeps it until `headstart backbone migrate`",
  );

  acknowledgeCdkInternals(main);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  return {
    app,
    config,
    main,
    ...(edgeStack ? { edgeStack } : {}),
    bundles,
    backbone,
    textBackbone,
    storage,
    pipeline,
    edge,
    alarmTopic,
  };
}
