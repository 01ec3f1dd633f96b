import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BACKBONE_JSON } from '../shared/backbone/index.js';
import { SEGMENT_JSON, SEGMENT_WEIGHTS } from '../shared/finetune/index.js';
import { everythingUnder, layout } from '../shared/layout/index.js';
import { TEXT_BACKBONE_JSON } from '../shared/text/index.js';
import { acknowledgeWildcardResources } from './nag.js';

/**
 * Which keys each function may touch, as object-key patterns of shared/layout/key-layout.ts. Nothing but the
 * CLI (the user's own credentials) writes `uploads/`, and bucket notifications fire only for `uploads/`, so no
 * function's writes can trigger a function.
 */
export interface BucketAccess {
  read: readonly string[];
  write?: readonly string[];
  /**
   * Keys whose object tags may be set (s3:PutObjectTagging): replacing them, and writing objects with a
   * `Tagging` header, which S3 also authorizes as PutObjectTagging. A subset of `write`.
   */
  tag?: readonly string[];
  delete?: readonly string[];
}

export const FUNCTION_ACCESS = {
  precompute: {
    read: [
      everythingUnder('uploads'),
      everythingUnder('backbones'),
      layout.projectSettings('*'),
      everythingUnder('features'),
      everythingUnder('datasets'),
    ],
    write: [
      everythingUnder('features'),
      everythingUnder('datasets'),
      everythingUnder('quarantine'),
      layout.trainingRequest('*'),
    ],
    // A photo that decodes after all (or is removed) takes its quarantine record with it.
    delete: [everythingUnder('quarantine')],
  },
  train: {
    read: [
      layout.defaultBackbonePointer,
      layout.backbone('*', BACKBONE_JSON),
      // A text project's version records its text backbone's id and sha256, read from the manifest alone.
      layout.defaultTextBackbonePointer,
      layout.textBackbone('*', TEXT_BACKBONE_JSON),
      // A fine-tuning trunk's pretrained blocks, which fine-tuning starts from.
      layout.backbone('*', SEGMENT_JSON),
      layout.backbone('*', SEGMENT_WEIGHTS),
      layout.projectSettings('*'),
      everythingUnder('datasets'),
      everythingUnder('features'),
      everythingUnder('training'),
      everythingUnder('models'),
    ],
    write: [everythingUnder('models'), everythingUnder('training')],
    // Model versions are written tagged candidate and retagged promoted (the bucket's lifecycle rule reads it).
    tag: [everythingUnder('models')],
    // The per-project training lease is released by deleting it.
    delete: [everythingUnder('training')],
  },
  // The edge also looks at a project's settings to tell "no model yet" from "no such project".
  edge: {
    read: [
      everythingUnder('models'),
      everythingUnder('backbones'),
      everythingUnder('keys'),
      layout.projectSettings('*'),
    ],
    // The review queue (photos it was unsure about, when a project turns it on): written create-if-absent, which
    // needs nothing but PutObject; it never reads, lists or deletes them.
    write: [everythingUnder('review')],
  },
} as const satisfies Record<string, BucketAccess>;

export type FunctionAccessName = keyof typeof FUNCTION_ACCESS;

export interface BucketGrantOptions {
  bucket: s3.IBucket;
  /** The role to attach the policy to (may be imported by name, e.g. the Lambda@Edge role in us-east-1). */
  role: iam.IRole;
  access: BucketAccess;
  /** Who this is for, in acknowledgement reasons: 'the precompute function'. */
  who: string;
}

/**
 * A policy granting exactly `access` on `bucket`: GetObject, PutObject, PutObjectTagging and DeleteObject per key
 * pattern, never the whole bucket. Also ListBucket on the bucket itself: without it S3 answers 403 instead of 404 for a key that
 * does not exist, and every function reads keys that may be absent (settings, pointers, leases, key records).
 */
export function grantBucketAccess(scope: Construct, id: string, options: BucketGrantOptions): iam.Policy {
  const { bucket, access } = options;
  const objects = (patterns: readonly string[]) => patterns.map((p) => bucket.arnForObjects(p));
  const statements = [
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(access.read) }),
  ];
  if (access.write?.length) {
    statements.push(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(access.write) }));
  }
  if (access.tag?.length) {
    statements.push(
      new iam.PolicyStatement({ actions: ['s3:PutObjectTagging'], resources: objects(access.tag) }),
    );
  }
  if (access.delete?.length) {
    statements.push(
      new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: objects(access.delete) }),
    );
  }
  const policy = new iam.Policy(scope, id, { statements, roles: [options.role] });
  const patterns = [...access.read, ...(access.write ?? []), ...(access.tag ?? []), ...(access.delete ?? [])];
  acknowledgeWildcardResources(policy, statements, (flat) => {
    const pattern = patterns.find((p) => flat.endsWith(`/${p}`));
    if (!pattern) return undefined;
    return `Scoped to the key pattern ${pattern}: ${options.who} works on objects whose names (project, content hash, version) are only known at run time, and on nothing else in the bucket.`;
  });
  return policy;
}
