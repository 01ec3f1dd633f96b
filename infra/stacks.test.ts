import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { ORIGIN_HEADER_BUCKET, ORIGIN_HEADER_REGION } from '../shared/http/index.js';
import { layout } from '../shared/layout/index.js';
import { STACK_OUTPUTS } from '../shared/stack-outputs.js';
import { builtInTextBackboneId } from '../shared/text/index.js';
import { FUNCTION_ACCESS } from './bucket-access.js';
import { type BuiltBundle, buildBundles, bundleSpec, REPO_ROOT } from './bundling.js';
import { lintTemplates } from './cfn-lint.js';
import { EDGE_LIMITS, EDGE_PATHS } from './edge.js';
import { createHeadstartApp, type HeadstartApp } from './headstart-app.js';
import type { InfraConfig } from './infra-config.js';
import { PIPELINE_LIMITS } from './pipeline.js';

/** The lifecycle rule that expires model versions the promotion gate held back, as CloudFormation gets it. */
const candidateRule = (days: number) =>
  Match.objectLike({
    Id: 'expire-candidate-model-versions',
    Prefix: 'models/',
    TagFilters: [{ Key: 'headstart-stage', Value: 'candidate' }],
    ExpirationInDays: days,
    NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    Status: 'Enabled',
  });

/** The lifecycle rule that expires review items (copies of end users' photos). */
const reviewRule = (days: number) =>
  Match.objectLike({
    Id: 'expire-review-items',
    Prefix: 'review/',
    ExpirationInDays: days,
    NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    Status: 'Enabled',
  });

/** The object patterns a policy's statements grant `action` on, for the roles `isRole` accepts. */
function grantedPatterns(
  template: Template,
  bucketId: string,
  isRole: (roles: unknown[]) => boolean,
  action: string,
): string[] {
  return statementsOf(template, isRole)
    .filter((s) => actions(s).includes(action))
    .flatMap(resources)
    .map((r) => bucketObjectPattern(r, bucketId) ?? JSON.stringify(r))
    .sort();
}

const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const cdkContext = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')).context as Record<
  string,
  unknown
>;
const base: InfraConfig = {
  stackName: 'Headstart',
  region: 'eu-west-1',
  edge: 'lambda-edge',
  retrainQuietSeconds: 30,
  candidateRetentionDays: 30,
  reviewRetentionDays: 30,
};

let work: string;
let bundles: BuiltBundle[];
const logs: string[] = [];

async function synthesize(
  config: InfraConfig,
  name: string,
): Promise<{ hs: HeadstartApp; assembly: CloudAssembly }> {
  const hs = await createHeadstartApp({
    context: cdkContext,
    outdir: join(work, name),
    config,
    bundles,
    backboneCache: join(tmpdir(), 'headstart-backbones'),
    log: (l) => logs.push(l),
  });
  // Synthesis runs cdk-nag's AwsSolutions checks on every stack and throws on any unacknowledged finding.
  return { hs, assembly: hs.app.synth() };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'headstart-infra-synth-'));
  bundles = await buildBundles(
    (['precompute', 'train', 'edge', 'function-url'] as const).map((n) => bundleSpec(n)),
    { outRoot: join(work, 'bundles') },
  );
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: string[] }>;

function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

function onlyOne(template: Template, type: string) {
  const found = Object.entries(resourcesOf(template, type));
  expect(found).toHaveLength(1);
  return { id: found[0]![0], ...found[0]![1] };
}

function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.resolve((construct.node.defaultChild as { logicalId: string }).logicalId) as string;
}

/** `{"Fn::Join": ["", [{"Fn::GetAtt": [<bucket>, "Arn"]}, "/uploads/*"]]}` -> "uploads/*" (else undefined). */
function bucketObjectPattern(resource: unknown, bucketId: string): string | undefined {
  const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) return undefined;
  const [first, second] = join[1];
  const getAtt = (first as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (!getAtt || getAtt[0] !== bucketId || typeof second !== 'string') return undefined;
  return second.replace(/^\//, '');
}

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
}

function statementsOf(template: Template, roleName: (roles: unknown[]) => boolean): Statement[] {
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => roleName(p.Properties!.Roles as unknown[]))
    .flatMap((p) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resources = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

describe('the Lambda@Edge variant in eu-west-1', () => {
  let hs: HeadstartApp;
  let assembly: CloudAssembly;
  let main: Template;
  let edge: Template;
  let bucketId: string;

  beforeAll(async () => {
    ({ hs, assembly } = await synthesize(base, 'lambda-edge'));
    main = Template.fromStack(hs.main);
    edge = Template.fromStack(hs.edgeStack!);
    bucketId = logicalIdOf(hs.main, hs.storage.bucket);
  }, 120_000);

  it('passes cdk-nag AwsSolutions on every stack with nothing left unacknowledged', () => {
    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(['Headstart', 'HeadstartEdge']);
    const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
      pluginReports: { violations?: unknown[] }[];
    };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });

  it('puts the edge function in us-east-1 with no environment variables', () => {
    expect(hs.edgeStack!.region).toBe('us-east-1');
    const fn = onlyOne(edge, 'AWS::Lambda::Function');
    expect(fn.Properties!.Environment).toBeUndefined();
    expect(fn.Properties).toMatchObject({
      Handler: 'index.handler',
      MemorySize: EDGE_LIMITS.lambdaEdge.memoryMb,
      Timeout: EDGE_LIMITS.lambdaEdge.timeoutSeconds,
    });
    edge.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'Headstart-edge-eu-west-1',
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: Match.arrayWith(['edgelambda.amazonaws.com', 'lambda.amazonaws.com']) },
          }),
        ],
      },
    });
    // Nothing regional in the main stack is a Lambda@Edge function: the distribution reads its version ARN.
    expect(JSON.stringify(main.toJSON())).toContain('Custom::CrossRegionStringParameterReader');
  });

  it('hands the bucket to the edge through CloudFront origin headers, not environment variables', () => {
    const dist = onlyOne(main, 'AWS::CloudFront::Distribution');
    const config = dist.Properties!.DistributionConfig as {
      Origins: { OriginCustomHeaders: { HeaderName: string; HeaderValue: unknown }[] }[];
    };
    const headers = Object.fromEntries(
      config.Origins[0]!.OriginCustomHeaders.map((h) => [h.HeaderName, h.HeaderValue]),
    );
    expect(headers[ORIGIN_HEADER_BUCKET]).toEqual({ Ref: bucketId });
    expect(headers[ORIGIN_HEADER_REGION]).toBe('eu-west-1');
  });

  it('never caches predictions and caches model metadata briefly, keyed by the API key', () => {
    const dist = onlyOne(main, 'AWS::CloudFront::Distribution');
    const config = dist.Properties!.DistributionConfig as {
      DefaultCacheBehavior: Record<string, unknown>;
      CacheBehaviors: Record<string, unknown>[];
    };
    const predict = config.CacheBehaviors.find((b) => b.PathPattern === EDGE_PATHS.predict)!;
    const model = config.CacheBehaviors.find((b) => b.PathPattern === EDGE_PATHS.model)!;
    for (const b of [config.DefaultCacheBehavior, predict]) {
      expect(b.CachePolicyId).toBe(CACHING_DISABLED);
      expect(b.LambdaFunctionAssociations).toEqual([
        expect.objectContaining({ EventType: 'origin-request', IncludeBody: true }),
      ]);
    }
    const policyId = (model.CachePolicyId as { Ref: string }).Ref;
    const policy = resourcesOf(main, 'AWS::CloudFront::CachePolicy')[policyId]!;
    const cfg = (policy.Properties!.CachePolicyConfig ?? {}) as {
      MinTTL: number;
      MaxTTL: number;
      ParametersInCacheKeyAndForwardedToOrigin: { HeadersConfig: { Headers: string[] } };
    };
    expect(cfg.MinTTL).toBeGreaterThan(0);
    expect(cfg.MaxTTL).toBeLessThanOrEqual(60);
    expect(cfg.ParametersInCacheKeyAndForwardedToOrigin.HeadersConfig.Headers).toEqual(['Authorization']);
  });

  it('sends only uploads/ created and removed events to the uploads queue', () => {
    const notifications = onlyOne(main, 'Custom::S3BucketNotifications');
    const queueId = logicalIdOf(hs.main, hs.pipeline.uploadsQueue);
    const configs = (
      notifications.Properties!.NotificationConfiguration as { QueueConfigurations: unknown[] }
    ).QueueConfigurations;
    const filter = { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } };
    expect(configs).toEqual([
      { Events: ['s3:ObjectCreated:*'], Filter: filter, QueueArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      { Events: ['s3:ObjectRemoved:*'], Filter: filter, QueueArn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
    ]);
    expect(Object.keys(notifications.Properties!.NotificationConfiguration as object)).toEqual([
      'QueueConfigurations',
    ]);
  });

  it('parks repeatedly failing work in dead-letter queues and alarms on them', () => {
    const pairs = [
      [hs.pipeline.uploadsQueue, hs.pipeline.uploadsDeadLetterQueue, PIPELINE_LIMITS.uploadsMaxReceiveCount],
      [
        hs.pipeline.trainingQueue,
        hs.pipeline.trainingDeadLetterQueue,
        PIPELINE_LIMITS.trainingMaxReceiveCount,
      ],
    ] as const;
    const queues = resourcesOf(main, 'AWS::SQS::Queue');
    const alarms = Object.values(resourcesOf(main, 'AWS::CloudWatch::Alarm'));
    for (const [queue, dlq, maxReceiveCount] of pairs) {
      const dlqId = logicalIdOf(hs.main, dlq);
      expect(queues[logicalIdOf(hs.main, queue)]!.Properties!.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
        maxReceiveCount,
      });
      expect(queues[dlqId]!.Properties!.MessageRetentionPeriod).toBe(14 * 24 * 3600);
      const alarm = alarms.find((a) =>
        (a.Properties!.Dimensions as { Value: unknown }[] | undefined)?.some(
          (d) => JSON.stringify(d.Value) === JSON.stringify({ 'Fn::GetAtt': [dlqId, 'QueueName'] }),
        ),
      );
      expect(alarm?.Properties).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [{ Ref: logicalIdOf(hs.main, hs.alarmTopic) }],
      });
    }
  });

  it('gives training 3 GB and 15 minutes, with queue visibility at least the function timeout', () => {
    const fns = resourcesOf(main, 'AWS::Lambda::Function');
    const queues = resourcesOf(main, 'AWS::SQS::Queue');
    const precompute = fns[logicalIdOf(hs.main, hs.pipeline.precompute)]!.Properties!;
    const train = fns[logicalIdOf(hs.main, hs.pipeline.train)]!.Properties!;
    expect(train).toMatchObject({ MemorySize: 3008, Timeout: 900 });
    expect(precompute).toMatchObject({
      MemorySize: PIPELINE_LIMITS.precompute.memoryMb,
      Timeout: PIPELINE_LIMITS.precompute.timeoutSeconds,
    });
    const visibility = (q: { node: { defaultChild?: unknown } }) =>
      queues[logicalIdOf(hs.main, q)]!.Properties!.VisibilityTimeout as number;
    expect(visibility(hs.pipeline.trainingQueue)).toBeGreaterThanOrEqual(900);
    expect(visibility(hs.pipeline.uploadsQueue)).toBeGreaterThanOrEqual(
      PIPELINE_LIMITS.precompute.timeoutSeconds,
    );
    main.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalIdOf(hs.main, hs.pipeline.precompute) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    main.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalIdOf(hs.main, hs.pipeline.train) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 1,
    });
  });

  it('scopes every function to its key prefixes, and no function may write uploads/', () => {
    const roleRef = (fn: { role?: unknown }) => ({ Ref: logicalIdOf(hs.main, fn.role as never) });
    const cases = [
      [
        'precompute',
        (r: unknown[]) => JSON.stringify(r) === JSON.stringify([roleRef(hs.pipeline.precompute)]),
      ],
      ['train', (r: unknown[]) => JSON.stringify(r) === JSON.stringify([roleRef(hs.pipeline.train)])],
      ['edge', (r: unknown[]) => JSON.stringify(r) === JSON.stringify(['Headstart-edge-eu-west-1'])],
    ] as const;
    for (const [name, isRole] of cases) {
      const access = FUNCTION_ACCESS[name];
      const s3Statements = statementsOf(main, isRole).filter((s) =>
        actions(s).some((a) => a.startsWith('s3:')),
      );
      const granted = (action: string) =>
        s3Statements
          .filter((s) => actions(s).includes(action))
          .flatMap(resources)
          .map((r) => bucketObjectPattern(r, bucketId) ?? JSON.stringify(r))
          .sort();
      expect(granted('s3:GetObject')).toEqual([...access.read].sort());
      expect(granted('s3:PutObject')).toEqual([...('write' in access ? access.write : [])].sort());
      expect(granted('s3:PutObjectTagging')).toEqual([...('tag' in access ? access.tag : [])].sort());
      expect(granted('s3:DeleteObject')).toEqual([...('delete' in access ? access.delete : [])].sort());
      expect(granted('s3:ListBucket')).toEqual([JSON.stringify({ 'Fn::GetAtt': [bucketId, 'Arn'] })]);
      for (const s of s3Statements) expect(actions(s).every((a) => !a.includes('*'))).toBe(true);
    }
    // The only path back into the pipeline would be a write under uploads/: nobody in the stacks has one.
    for (const template of [main, edge]) {
      const writes = statementsOf(template, () => true)
        .filter((s) => actions(s).some((a) => a === 's3:PutObject' || a === 's3:*'))
        .flatMap(resources)
        .map((r) => bucketObjectPattern(r, bucketId));
      expect(writes.filter((p) => p !== undefined && (p.startsWith('uploads') || p === '*'))).toEqual([]);
      const everything = statementsOf(template, () => true).flatMap(resources);
      expect(everything).not.toContain('*');
    }
  });

  it('keeps the bucket private, encrypted, versioned, logged and retained, with lifecycle rules', () => {
    const bucket = resourcesOf(main, 'AWS::S3::Bucket')[bucketId] as unknown as {
      Properties: Record<string, unknown>;
      DeletionPolicy: string;
    };
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LoggingConfiguration: {
        DestinationBucketName: { Ref: logicalIdOf(hs.main, hs.storage.logBucket) },
        LogFilePrefix: 's3/',
      },
    });
    const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'quarantine/', ExpirationInDays: 30, Status: 'Enabled' }),
    );
    expect(rules).toContainEqual(
      expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
    );
    main.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('expires model versions tagged candidate after 30 days, and nothing else under models/', () => {
    main.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([candidateRule(30)]) },
    });
    const bucket = resourcesOf(main, 'AWS::S3::Bucket')[bucketId]!;
    const rules = (bucket.Properties!.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    // Promoted versions (rollback targets) and untagged objects under models/ never expire while current.
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined || r.ExpirationDate !== undefined);
    for (const r of expiring) {
      const prefix = (r.Prefix as string | undefined) ?? '';
      if (prefix === '' || prefix.startsWith('models')) expect(r.TagFilters).toBeDefined();
    }
  });

  it('lets the edge write review/ and nothing else, and expires review items after 30 days', () => {
    const isEdge = (r: unknown[]) => JSON.stringify(r) === JSON.stringify(['Headstart-edge-eu-west-1']);
    expect(grantedPatterns(main, bucketId, isEdge, 's3:PutObject')).toEqual(['review/*']);
    expect(grantedPatterns(main, bucketId, isEdge, 's3:DeleteObject')).toEqual([]);
    expect(grantedPatterns(main, bucketId, isEdge, 's3:GetObject')).not.toContain('review/*');
    main.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([reviewRule(30)]) },
    });
    // Nothing is notified of review/ (the only notifications are for uploads/, asserted above).
    const notifications = onlyOne(main, 'Custom::S3BucketNotifications');
    expect(JSON.stringify(notifications.Properties!.NotificationConfiguration)).not.toContain('review');
  });

  it('lets only the training function tag objects, and only under models/', () => {
    const tagging = Object.values(resourcesOf(main, 'AWS::IAM::Policy')).flatMap((p) =>
      (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement.filter((s) =>
        actions(s).some((a) => a.includes('Tagging') || a === 's3:*'),
      ).map((s) => ({ roles: p.Properties!.Roles, actions: actions(s), resources: resources(s) })),
    );
    expect(tagging).toEqual([
      {
        roles: [{ Ref: logicalIdOf(hs.main, hs.pipeline.train.role as never) }],
        actions: ['s3:PutObjectTagging'],
        resources: [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/models/*']] }],
      },
    ]);
    expect(
      statementsOf(edge, () => true)
        .flatMap(actions)
        .filter((a) => a.includes('Tagging')),
    ).toEqual([]);
  });

  it('deploys the default backbone into the bucket before any queue is read', () => {
    const files = resourcesOf(main, 'Custom::HeadstartBackboneFile');
    const keys = Object.values(files).map((f) => JSON.stringify(f.Properties!.Create));
    const id = hs.backbone.id;
    expect(keys.some((k) => k.includes(`backbones/${id}/weights.bin`))).toBe(true);
    expect(keys.some((k) => k.includes(`backbones/${id}/backbone.json`))).toBe(true);
    expect(keys.some((k) => k.includes('backbones/default.json') && k.includes(id))).toBe(true);
    // Only into a bucket that names no default yet: an upgrade never switches a store's backbone by itself.
    const pointer = keys.find((k) => k.includes('backbones/default.json'));
    expect(pointer?.replace(/\\"/g, '"')).toContain('"IfNoneMatch":"*"');
    expect(pointer).toContain('PreconditionFailed');
    // The fine-tuning trunk and the pretrained blocks fine-tuning starts from travel with it.
    const trunk = hs.backbone.trunk.id;
    for (const f of ['weights.bin', 'backbone.json', 'segment.json', 'segment.bin']) {
      expect(keys.some((k) => k.includes(`backbones/${trunk}/${f}`))).toBe(true);
    }
    for (const mapping of Object.values(resourcesOf(main, 'AWS::Lambda::EventSourceMapping'))) {
      for (const file of Object.keys(files)) expect(mapping.DependsOn).toContain(file);
    }
  });

  it('deploys the built-in text backbone, its weights before its manifest and both before a create-if-absent pointer', () => {
    const files = resourcesOf(main, 'Custom::HeadstartBackboneFile');
    const byKey = (pred: (k: string) => boolean) => {
      const found = Object.entries(files).find(([, f]) => pred(JSON.stringify(f.Properties!.Create)));
      expect(found, 'a custom resource writing that key').toBeDefined();
      return found!;
    };
    const id = hs.textBackbone.id;
    const [weightsId] = byKey((k) => k.includes(`backbones/${id}/text-weights.bin`));
    const [manifestId, manifest] = byKey((k) => k.includes(`backbones/${id}/text-backbone.json`));
    const [, pointer] = byKey((k) => k.includes('backbones/default-text.json'));
    expect(manifest.DependsOn).toContain(weightsId);
    expect(pointer.DependsOn).toContain(manifestId);
    const create = JSON.stringify(pointer.Properties!.Create).replace(/\\+"/g, '"');
    expect(create).toContain(`"Body":"{"id":"${id}"}"`);
    expect(create).toContain('"IfNoneMatch":"*"');
    // The same id the local stack builds, from the same pinned package and recipe.
    expect(id).toBe(builtInTextBackboneId());
    expect(logs.some((l) => l.includes(`text backbone ${id}`))).toBe(true);
  });

  it('lets the training function read the text backbone pointer and manifest but not its weights', () => {
    const statements = statementsOf(
      main,
      (r) =>
        JSON.stringify(r) ===
        JSON.stringify([{ Ref: logicalIdOf(hs.main, hs.pipeline.train.role as never) }]),
    );
    const reads = statements
      .filter((s) => actions(s).includes('s3:GetObject'))
      .flatMap(resources)
      .map((r) => bucketObjectPattern(r, bucketId));
    expect(reads).toContain(layout.defaultTextBackbonePointer);
    expect(reads).toContain(layout.textBackbone('*', 'text-backbone.json'));
    expect(reads.some((r) => r?.endsWith('text-weights.bin') || r === 'backbones/*')).toBe(false);
  });

  it('outputs what the CLI needs', () => {
    const outputs = main.toJSON().Outputs as Record<string, unknown>;
    expect(Object.keys(outputs).sort()).toEqual(Object.values(STACK_OUTPUTS).sort());
    main.hasOutput(STACK_OUTPUTS.bucketName, { Value: { Ref: bucketId } });
  });

  it('printed bundle sizes far below the Lambda@Edge limit', () => {
    const edgeBundle = bundles.find((b) => b.name === 'edge')!;
    expect(edgeBundle.bytes.zipped).toBeLessThan(edgeBundle.limits.zipped! / 2);
    for (const b of bundles) expect(b.bytes.total).toBeLessThan(b.limits.unzipped / 4);
    expect(logs.some((l) => /default backbone/.test(l))).toBe(true);
  });

  // cfn-lint alone takes tens of seconds, minutes on a loaded machine.
  it('passes cfn-lint', (ctx) => expectLintClean(ctx, assembly), 300_000);

  it('fails synthesis on a finding nobody acknowledged', async () => {
    const hs2 = await createHeadstartApp({
      context: cdkContext,
      outdir: join(work, 'negative'),
      config: base,
      bundles,
      backboneCache: join(tmpdir(), 'headstart-backbones'),
      log: () => {},
    });
    new s3.Bucket(hs2.main, 'UnloggedBucket', { enforceSSL: true });
    expect(() => hs2.app.synth()).toThrow(/AwsSolutions-S1/);
    const report = readFileSync(join(work, 'negative', 'validation-report.json'), 'utf8');
    expect(report).toContain('AwsSolutions-S1');
    expect(report).toContain('UnloggedBucket');
  });
});

describe('the Function URL variant (-c headstart:edge=function-url)', () => {
  let hs: HeadstartApp;
  let assembly: CloudAssembly;
  let main: Template;

  beforeAll(async () => {
    ({ hs, assembly } = await synthesize(
      { ...base, edge: 'function-url', candidateRetentionDays: 7, reviewRetentionDays: 9 },
      'function-url',
    ));
    main = Template.fromStack(hs.main);
  }, 120_000);

  it('deploys one regional stack with a Function URL and no CloudFront', () => {
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['Headstart']);
    expect(hs.edgeStack).toBeUndefined();
    main.resourceCountIs('AWS::CloudFront::Distribution', 0);
    main.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
    const bucketId = logicalIdOf(hs.main, hs.storage.bucket);
    main.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: EDGE_LIMITS.functionUrl.memoryMb,
      Environment: { Variables: Match.objectLike({ HEADSTART_BUCKET: { Ref: bucketId } }) },
    });
    main.hasOutput(STACK_OUTPUTS.edgeVariant, { Value: 'function-url' });
  });

  it('expires candidate model versions after headstart:candidateRetentionDays days', () => {
    main.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([candidateRule(7)]) },
    });
  });

  it('lets the Function URL write review/ and nothing else, expired after headstart:reviewRetentionDays', () => {
    const bucketId = logicalIdOf(hs.main, hs.storage.bucket);
    const roleRef = { Ref: logicalIdOf(hs.main, hs.edge.apiFunction!.role as never) };
    const isFunctionUrl = (r: unknown[]) => JSON.stringify(r) === JSON.stringify([roleRef]);
    expect(grantedPatterns(main, bucketId, isFunctionUrl, 's3:PutObject')).toEqual(['review/*']);
    expect(grantedPatterns(main, bucketId, isFunctionUrl, 's3:DeleteObject')).toEqual([]);
    main.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([reviewRule(9)]) },
    });
  });

  // cfn-lint alone takes tens of seconds, minutes on a loaded machine.
  it('passes cfn-lint', (ctx) => expectLintClean(ctx, assembly), 300_000);
});

describe('the Lambda@Edge variant when the app itself is in us-east-1', () => {
  it('keeps the edge function in the one stack, still without environment variables', async () => {
    const { hs, assembly } = await synthesize({ ...base, region: 'us-east-1' }, 'us-east-1');
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['Headstart']);
    const main = Template.fromStack(hs.main);
    const edgeFunctions = Object.values(resourcesOf(main, 'AWS::Lambda::Function')).filter(
      (f) => f.Properties!.Runtime === 'nodejs22.x',
    );
    expect(edgeFunctions).toHaveLength(1);
    expect(edgeFunctions[0]!.Properties!.Environment).toBeUndefined();
    main.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^EdgeEdgeFunctionRole') }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 's3:GetObject' })]),
      },
    });
  }, 120_000);
});

/** cfn-lint over every stack of an assembly finds nothing (skipped, with the reason, where it is not installed). */
async function expectLintClean(ctx: TestContext, assembly: CloudAssembly): Promise<void> {
  const result = await lintTemplates(
    assembly.stacks.map((s) => ({
      file: join(assembly.directory, s.templateFile),
      region: s.environment.region,
    })),
  );
  if (result.status === 'skipped') {
    console.warn(`[headstart tests] ${result.reason}`);
    ctx.skip();
    return;
  }
  expect(result.status === 'failed' ? result.output : '').toBe('');
  expect(result.status).toBe('passed');
}
