import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IDependable } from 'constructs';
import { prefixes } from '../shared/layout/index.js';
import { FUNCTION_ACCESS, grantBucketAccess } from './bucket-access.js';
import type { BuiltBundle } from './bundling.js';
import { createFunctionRole } from './function-role.js';

/** The numbers the README quotes; also asserted by the stack tests. */
export const PIPELINE_LIMITS = {
  precompute: {
    memoryMb: 2048,
    timeoutSeconds: 300,
    batchSize: 25,
    batchWindowSeconds: 5,
    maxConcurrency: 5,
  },
  // Sized for 10,000 examples: their cached features (576 floats each, ~23 MB) and the candidate head fits.
  train: { memoryMb: 3008, timeoutSeconds: 900, batchSize: 1, maxConcurrency: 2 },
  uploadsMaxReceiveCount: 5,
  trainingMaxReceiveCount: 3,
  dlqRetentionDays: 14,
} as const;

/** Lambda runs regional bundles from here, and the .wasm files sit next to index.mjs. */
const LAMBDA_TASK_ROOT = '/var/task';

export interface PipelineProps {
  bucket: s3.Bucket;
  precompute: BuiltBundle;
  train: BuiltBundle;
  retrainQuietSeconds: number;
  alarmTopic: sns.ITopic;
  /** The functions start reading queues only after this (the default backbone) is in the bucket. */
  after?: IDependable;
}

export interface Pipeline {
  uploadsQueue: sqs.Queue;
  uploadsDeadLetterQueue: sqs.Queue;
  trainingQueue: sqs.Queue;
  trainingDeadLetterQueue: sqs.Queue;
  precompute: lambda.Function;
  train: lambda.Function;
  alarms: cloudwatch.Alarm[];
}

function queuePair(scope: Construct, id: string, visibility: Duration, maxReceiveCount: number) {
  const dlq = new sqs.Queue(scope, `${id}DeadLetterQueue`, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(PIPELINE_LIMITS.dlqRetentionDays),
  });
  const queue = new sqs.Queue(scope, `${id}Queue`, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    visibilityTimeout: visibility,
    retentionPeriod: Duration.days(4),
    deadLetterQueue: { queue: dlq, maxReceiveCount },
  });
  return { queue, dlq };
}

/**
 * Uploads in, features and models out: S3 notifications for `uploads/` into a queue, the precompute function on
 * it (partial batch responses), a delayed training queue and the training function, dead-letter queues with
 * alarms.
 */
export function createPipeline(scope: Construct, props: PipelineProps): Pipeline {
  const c = new Construct(scope, 'Pipeline');
  const limits = PIPELINE_LIMITS;

  // A message stays hidden while one invocation may still be working on it, with room for a retry inside it.
  const uploads = queuePair(
    c,
    'Uploads',
    Duration.seconds(limits.precompute.timeoutSeconds * 3),
    limits.uploadsMaxReceiveCount,
  );
  const training = queuePair(
    c,
    'Training',
    Duration.seconds(limits.train.timeoutSeconds * 2),
    limits.trainingMaxReceiveCount,
  );

  // Only `uploads/`: everything the functions write lives under other prefixes, so nothing they write fires this.
  const target = new s3n.SqsDestination(uploads.queue);
  props.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, target, { prefix: prefixes.uploads });
  props.bucket.addEventNotification(s3.EventType.OBJECT_REMOVED, target, { prefix: prefixes.uploads });

  const common = {
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.X86_64,
    environment: {
      HEADSTART_BUCKET: props.bucket.bucketName,
      HEADSTART_TRAINING_QUEUE_URL: training.queue.queueUrl,
      HEADSTART_RETRAIN_QUIET_SECONDS: String(props.retrainQuietSeconds),
      HEADSTART_WASM_DIR: LAMBDA_TASK_ROOT,
    },
  };

  const precomputeRole = createFunctionRole(c, 'PrecomputeIdentity', 'Headstart feature precompute');
  const precompute = new lambda.Function(c, 'Precompute', {
    ...common,
    handler: props.precompute.handler,
    description: 'Headstart: computes backbone features of uploaded photos (SQS batches of S3 events)',
    code: lambda.Code.fromAsset(props.precompute.dir),
    memorySize: limits.precompute.memoryMb,
    timeout: Duration.seconds(limits.precompute.timeoutSeconds),
    role: precomputeRole.role,
    logGroup: precomputeRole.logGroup,
  });
  // The function (hence its queue mapping) waits for its data policy, as it would for a default policy.
  const precomputeAccess = grantBucketAccess(c, 'PrecomputeBucketAccess', {
    bucket: props.bucket,
    role: precomputeRole.role,
    access: FUNCTION_ACCESS.precompute,
    who: 'the precompute function',
  });
  precompute.node.addDependency(precomputeAccess);
  training.queue.grantSendMessages(precompute);
  const precomputeSource = new SqsEventSource(uploads.queue, {
    batchSize: limits.precompute.batchSize,
    maxBatchingWindow: Duration.seconds(limits.precompute.batchWindowSeconds),
    reportBatchItemFailures: true,
    maxConcurrency: limits.precompute.maxConcurrency,
  });
  precompute.addEventSource(precomputeSource);

  const trainRole = createFunctionRole(c, 'TrainIdentity', 'Headstart head training');
  const train = new lambda.Function(c, 'Train', {
    ...common,
    handler: props.train.handler,
    description: 'Headstart: trains a project head from cached features (SQS training nudges)',
    code: lambda.Code.fromAsset(props.train.dir),
    memorySize: limits.train.memoryMb,
    timeout: Duration.seconds(limits.train.timeoutSeconds),
    role: trainRole.role,
    logGroup: trainRole.logGroup,
  });
  const trainAccess = grantBucketAccess(c, 'TrainBucketAccess', {
    bucket: props.bucket,
    role: trainRole.role,
    access: FUNCTION_ACCESS.train,
    who: 'the training function',
  });
  train.node.addDependency(trainAccess);
  // A nudge that finds the project's training busy is sent again, delayed by the quiet window.
  training.queue.grantSendMessages(train);
  const trainSource = new SqsEventSource(training.queue, {
    batchSize: limits.train.batchSize,
    reportBatchItemFailures: true,
    maxConcurrency: limits.train.maxConcurrency,
  });
  train.addEventSource(trainSource);

  if (props.after) {
    for (const fn of [precompute, train]) {
      for (const child of fn.node.children) {
        if (child instanceof lambda.EventSourceMapping) child.node.addDependency(props.after);
      }
    }
  }

  const alarms = [
    ['Uploads', uploads.dlq, 'uploads the precompute function failed on repeatedly'],
    ['Training', training.dlq, 'training nudges that failed repeatedly'],
  ].map(([name, dlq, what]) => {
    const alarm = new cloudwatch.Alarm(c, `${name as string}DeadLetterAlarm`, {
      alarmDescription: `Headstart: the ${(name as string).toLowerCase()} dead-letter queue holds ${what as string}; see README, "Deploying with CDK".`,
      metric: (dlq as sqs.Queue).metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
    return alarm;
  });

  return {
    uploadsQueue: uploads.queue,
    uploadsDeadLetterQueue: uploads.dlq,
    trainingQueue: training.queue,
    trainingDeadLetterQueue: training.dlq,
    precompute,
    train,
    alarms,
  };
}
