import { Aws, Duration, Fn, Stack } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ORIGIN_HEADER_BUCKET, ORIGIN_HEADER_REGION } from '../shared/http/index.js';
import { FUNCTION_ACCESS, grantBucketAccess } from './bucket-access.js';
import type { BuiltBundle } from './bundling.js';
import { createFunctionRole } from './function-role.js';
import type { EdgeVariant } from './infra-config.js';
import { acknowledge, acknowledgeWildcardResources } from './nag.js';

export const EDGE_LIMITS = {
  lambdaEdge: { memoryMb: 2048, timeoutSeconds: 30 },
  functionUrl: { memoryMb: 2048, timeoutSeconds: 30 },
  /** Model metadata is cached this long per API key; predictions are never cached. */
  modelMetadataTtlSeconds: 10,
} as const;

/** CloudFront path patterns of the API (shared/http/api-schemas.ts). */
export const EDGE_PATHS = {
  predict: '/v1/projects/*/predict*',
  model: '/v1/projects/*/model',
} as const;

export interface EdgeProps {
  variant: EdgeVariant;
  bucket: s3.IBucket;
  logBucket: s3.IBucket;
  /** The Lambda@Edge bundle, or the Function URL bundle for the other variant. */
  bundle: BuiltBundle;
  /** The region of the bucket: the edge function's S3 client must talk to it wherever the edge runs. */
  region: string;
  /** Stack in us-east-1 that holds the Lambda@Edge function; unset when the app's own region is us-east-1. */
  edgeStack?: Stack;
  /** Name of the Lambda@Edge role: fixed so the bucket's stack can grant to it across regions. */
  edgeRoleName: string;
}

export interface Edge {
  endpointUrl: string;
  distribution?: cloudfront.Distribution;
  edgeFunction?: cloudfront.experimental.EdgeFunction;
  apiFunction?: lambda.Function;
}

/**
 * The Lambda@Edge variant: CloudFront in front, the Hono app as the origin-request function (it answers every
 * request itself; the origin is only the carrier of the configuration headers). The function lives in
 * us-east-1; the bucket's name reaches it through the origin's custom headers, since Lambda@Edge has no
 * environment variables and the bucket's generated name is not known when the bundle is built.
 */
function createLambdaEdge(scope: Construct, props: EdgeProps): Edge {
  const c = new Construct(scope, 'Edge');
  const main = Stack.of(scope);
  const edgeScope: Construct = props.edgeStack ?? c;

  const role = new iam.Role(edgeScope, 'EdgeFunctionRole', {
    roleName: props.edgeRoleName,
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Headstart Lambda@Edge API (origin request)',
  });
  const fn = new cloudfront.experimental.EdgeFunction(c, 'EdgeFunction', {
    ...(props.edgeStack ? { stackId: props.edgeStack.node.id } : {}),
    description: 'Headstart: the prediction API at the edge (origin request, Hono)',
    // Lambda@Edge documents Node.js 22 as its newest runtime.
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: props.bundle.handler,
    code: lambda.Code.fromAsset(props.bundle.dir),
    memorySize: EDGE_LIMITS.lambdaEdge.memoryMb,
    timeout: Duration.seconds(EDGE_LIMITS.lambdaEdge.timeoutSeconds),
    role,
  });
  // The underlying function: in the edge stack, or under `fn` when the app itself is in us-east-1.
  const edgeFn = fn.permissionsNode.defaultChild;
  if (edgeFn) {
    acknowledge(edgeFn, {
      id: 'AwsSolutions-L1',
      reason:
        'Lambda@Edge lists Node.js 22 as its newest supported runtime; the regional functions use the newest Lambda runtime.',
    });
  }

  // Lambda@Edge writes logs in whichever region served the request, to /aws/lambda/us-east-1.<name>.
  const logArn = (group: string) =>
    `arn:${Aws.PARTITION}:logs:*:${Aws.ACCOUNT_ID}:log-group:/aws/lambda/${group}:*`;
  const logStatements = [
    new iam.PolicyStatement({
      actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logArn(`us-east-1.${fn.functionName}`), logArn(fn.functionName)],
    }),
  ];
  const logs = new iam.Policy(edgeScope, 'EdgeFunctionLogs', { statements: logStatements, roles: [role] });
  acknowledgeWildcardResources(
    logs,
    logStatements,
    () =>
      "Only this function's own log groups: Lambda@Edge creates them in every region that serves requests (region *), and log streams are named per instance (:*).",
  );

  // IAM is global: the bucket's stack attaches the data policy to the edge role by name.
  const grantee =
    Stack.of(role) === main ? role : iam.Role.fromRoleName(c, 'EdgeFunctionRoleRef', props.edgeRoleName);
  const access = grantBucketAccess(c, 'EdgeBucketAccess', {
    bucket: props.bucket,
    role: grantee,
    access: FUNCTION_ACCESS.edge,
    who: 'the edge function',
  });

  const origin = new origins.HttpOrigin(props.bucket.bucketRegionalDomainName, {
    protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
    customHeaders: { [ORIGIN_HEADER_BUCKET]: props.bucket.bucketName, [ORIGIN_HEADER_REGION]: props.region },
  });
  const edgeLambdas = (includeBody: boolean): cloudfront.EdgeLambda[] => [
    {
      functionVersion: fn.currentVersion,
      eventType: cloudfront.LambdaEdgeEventType.ORIGIN_REQUEST,
      includeBody,
    },
  ];
  // Uncached: every request runs the function. AllViewerExceptHostHeader passes the API key, content type and
  // query string on (with caching off, CloudFront forwards Authorization through an origin request policy).
  const uncached: cloudfront.BehaviorOptions = {
    origin,
    viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
    allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
    cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
    originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
    edgeLambdas: edgeLambdas(true),
  };
  const ttl = Duration.seconds(EDGE_LIMITS.modelMetadataTtlSeconds);
  const modelCache = new cloudfront.CachePolicy(c, 'ModelMetadataCachePolicy', {
    comment: 'Headstart model metadata: cached briefly, per API key',
    // The app answers `no-store`; a minimum TTL above zero is what lets CloudFront keep it for a few seconds.
    minTtl: ttl,
    defaultTtl: ttl,
    maxTtl: ttl,
    // The function checks the key only on a cache miss, so the key must be part of the cache key: a response
    // cached for one key is never served to a request without it.
    headerBehavior: cloudfront.CacheHeaderBehavior.allowList('Authorization'),
    queryStringBehavior: cloudfront.CacheQueryStringBehavior.none(),
    cookieBehavior: cloudfront.CacheCookieBehavior.none(),
    enableAcceptEncodingGzip: true,
    enableAcceptEncodingBrotli: true,
  });
  const distribution = new cloudfront.Distribution(c, 'Distribution', {
    comment: 'Headstart prediction API',
    defaultBehavior: uncached,
    additionalBehaviors: {
      [EDGE_PATHS.predict]: uncached,
      [EDGE_PATHS.model]: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: modelCache,
        edgeLambdas: edgeLambdas(false),
      },
    },
    priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
    httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
    enableLogging: true,
    logBucket: props.logBucket,
    logFilePrefix: 'cloudfront/',
  });
  // No request reaches the function before it may read the bucket.
  distribution.node.addDependency(access);
  acknowledge(
    distribution,
    {
      id: 'AwsSolutions-CFR1',
      reason: 'Headstart serves its owner worldwide; who may call it is decided by API keys, not by country.',
    },
    {
      id: 'AwsSolutions-CFR2',
      reason:
        'Every project route requires an API key checked by the function; WAF would add a fixed monthly cost that a small classifier does not justify. Add a web ACL for public, high-traffic deployments.',
    },
    {
      id: 'AwsSolutions-CFR7',
      reason:
        'Not an S3 origin in practice: the origin-request function answers every request and CloudFront never contacts the origin, which only carries the configuration headers. It is reached as a custom HTTPS origin and the private bucket grants CloudFront nothing, so origin access control would add a read path that is not wanted.',
    },
    {
      id: 'AwsSolutions-CFR4',
      reason:
        'No custom domain: the distribution uses the default *.cloudfront.net certificate, whose TLS policy cannot be set. With a custom domain and certificate, set minimumProtocolVersion to TLSv1.2_2021.',
    },
  );
  return { endpointUrl: `https://${distribution.distributionDomainName}`, distribution, edgeFunction: fn };
}

/** The Function URL variant: one regional Lambda serving the same app, configured from its environment. */
function createFunctionUrl(scope: Construct, props: EdgeProps): Edge {
  const c = new Construct(scope, 'Api');
  const identity = createFunctionRole(c, 'Identity', 'Headstart prediction API (Function URL)');
  const apiFunction = new lambda.Function(c, 'Function', {
    description: 'Headstart: the prediction API (Lambda Function URL, Hono)',
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.X86_64,
    handler: props.bundle.handler,
    code: lambda.Code.fromAsset(props.bundle.dir),
    memorySize: EDGE_LIMITS.functionUrl.memoryMb,
    timeout: Duration.seconds(EDGE_LIMITS.functionUrl.timeoutSeconds),
    role: identity.role,
    logGroup: identity.logGroup,
    environment: {
      HEADSTART_BUCKET: props.bucket.bucketName,
      HEADSTART_WASM_DIR: '/var/task',
      HEADSTART_REQUIRE_KEYS: 'true',
    },
  });
  const access = grantBucketAccess(c, 'BucketAccess', {
    bucket: props.bucket,
    role: identity.role,
    access: FUNCTION_ACCESS.edge,
    who: 'the API function',
  });
  apiFunction.node.addDependency(access);
  // The app authenticates every project route with an API key; IAM auth would need SigV4-signing clients.
  const url = apiFunction.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
  // `https://<id>.lambda-url.<region>.on.aws`, without the trailing slash, like the CloudFront endpoint.
  const endpointUrl = Fn.join('', ['https://', Fn.select(2, Fn.split('/', url.url))]);
  return { endpointUrl, apiFunction };
}

export function createEdge(scope: Construct, props: EdgeProps): Edge {
  return props.variant === 'function-url' ? createFunctionUrl(scope, props) : createLambdaEdge(scope, props);
}
