import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { prefixes } from '../shared/layout/index.js';
import { VERSION_STAGE, VERSION_STAGE_TAG } from '../shared/models/version-stage.js';
import { acknowledge } from './nag.js';

export interface Storage {
  /** Everything Headstart keeps: uploads, features, dataset index, models, backbones, keys. */
  bucket: s3.Bucket;
  /** S3 server access logs (`s3/`) and CloudFront standard logs (`cloudfront/`). */
  logBucket: s3.Bucket;
}

/** How long things are kept; the numbers the README's teardown and cost sections quote. */
export const RETENTION = {
  quarantineDays: 30,
  /** Default of `headstart:reviewRetentionDays`: copies of end users' photos kept for review. */
  reviewDays: 30,
  /** Default of `headstart:candidateRetentionDays`: model versions never made current. */
  candidateVersionDays: 30,
  noncurrentVersionDays: 30,
  /** Dataset shards and training state are rewritten on every change: their old versions are noise. */
  churnNoncurrentDays: 3,
  accessLogDays: 90,
} as const;

export interface StorageProps {
  /** Days after which the files of a model version that was never made current expire. */
  candidateRetentionDays?: number;
  /** Days after which review items (copies of photos the API was unsure about) expire. */
  reviewRetentionDays?: number;
}

export function createStorage(scope: Construct, props: StorageProps = {}): Storage {
  const candidateDays = props.candidateRetentionDays ?? RETENTION.candidateVersionDays;
  const reviewDays = props.reviewRetentionDays ?? RETENTION.reviewDays;
  const logBucket = new s3.Bucket(scope, 'LogBucket', {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    // Log delivery writes SSE-S3 only; CloudFront's standard logs need ACLs, hence BucketOwnerPreferred.
    encryption: s3.BucketEncryption.S3_MANAGED,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
    lifecycleRules: [
      { id: 'expire-logs', expiration: Duration.days(RETENTION.accessLogDays) },
      { id: 'abort-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
    removalPolicy: RemovalPolicy.RETAIN,
  });
  acknowledge(logBucket, {
    id: 'AwsSolutions-S1',
    reason:
      'This is the access-log bucket itself; logging its own accesses into itself would log its log deliveries forever.',
  });

  const bucket = new s3.Bucket(scope, 'Bucket', {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    encryption: s3.BucketEncryption.S3_MANAGED,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: true,
    serverAccessLogsBucket: logBucket,
    serverAccessLogsPrefix: 's3/',
    lifecycleRules: [
      {
        // Set-aside uploads are kept long enough to look at with `headstart status`, then dropped.
        id: 'expire-quarantine',
        prefix: prefixes.quarantine,
        expiration: Duration.days(RETENTION.quarantineDays),
        noncurrentVersionExpiration: Duration.days(1),
      },
      {
        // End users' photos: kept long enough to label, then gone, old versions included, a day later.
        id: 'expire-review-items',
        prefix: prefixes.review,
        expiration: Duration.days(reviewDays),
        noncurrentVersionExpiration: Duration.days(1),
      },
      {
        // A version the promotion gate held back is tagged candidate by writeVersion (shared/models); promoting
        // it (including a rollback to it) retags it promoted first, so versions any pointer named are kept.
        id: 'expire-candidate-model-versions',
        prefix: prefixes.models,
        tagFilters: { [VERSION_STAGE_TAG]: VERSION_STAGE.candidate },
        expiration: Duration.days(candidateDays),
        noncurrentVersionExpiration: Duration.days(1),
      },
      {
        id: 'expire-rewritten-dataset-index',
        prefix: prefixes.datasets,
        noncurrentVersionExpiration: Duration.days(RETENTION.churnNoncurrentDays),
      },
      {
        id: 'expire-rewritten-training-state',
        prefix: prefixes.training,
        noncurrentVersionExpiration: Duration.days(RETENTION.churnNoncurrentDays),
      },
      {
        // Overwritten or deleted objects anywhere (replaced photos, flipped model pointers, revoked keys) stay
        // recoverable for a month.
        id: 'expire-noncurrent-versions',
        noncurrentVersionExpiration: Duration.days(RETENTION.noncurrentVersionDays),
        abortIncompleteMultipartUploadAfter: Duration.days(7),
      },
      { id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true },
    ],
    // The user's photos and models outlive the stack: `cdk destroy` leaves the bucket (see README, teardown).
    removalPolicy: RemovalPolicy.RETAIN,
  });
  return { bucket, logBucket };
}
