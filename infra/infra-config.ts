import { z } from 'zod';
import { InfraConfigError } from './infra-errors.js';

/** Where predictions are served: CloudFront + Lambda@Edge (default), or one regional Lambda Function URL. */
export type EdgeVariant = 'lambda-edge' | 'function-url';

export interface InfraConfig {
  /** Prefix of the stack names and of the edge role's name. */
  stackName: string;
  /** The region of the bucket, the queues and the functions. Always explicit: nothing is looked up at synth. */
  region: string;
  /** Undefined keeps the stacks account-agnostic (`AWS::AccountId` is resolved by CloudFormation). */
  account?: string;
  edge: EdgeVariant;
  retrainQuietSeconds: number;
  /** Days after which a model version that was never made current (a candidate) expires from the bucket. */
  candidateRetentionDays: number;
  /** Days after which review items (copies of end users' photos) expire from the bucket. */
  reviewRetentionDays: number;
  /** Subscribed to the dead-letter alarms when given. */
  alarmEmail?: string;
}

/** The context keys (`npx cdk synth -c headstart:edge=function-url`). */
export const CONTEXT_KEYS = {
  edge: 'headstart:edge',
  region: 'headstart:region',
  stackName: 'headstart:stackName',
  retrainQuietSeconds: 'headstart:retrainQuietSeconds',
  candidateRetentionDays: 'headstart:candidateRetentionDays',
  reviewRetentionDays: 'headstart:reviewRetentionDays',
  alarmEmail: 'headstart:alarmEmail',
} as const;

const schema = z.object({
  stackName: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,39}$/, 'a letter, then up to 39 letters, digits or hyphens')
    .default('Headstart'),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as eu-west-1')
    .default('us-east-1'),
  account: z
    .string()
    .regex(/^\d{12}$/, 'a 12-digit AWS account id')
    .optional(),
  edge: z.enum(['lambda-edge', 'function-url']).default('lambda-edge'),
  retrainQuietSeconds: z.coerce.number().int().min(0).max(900).default(30),
  candidateRetentionDays: z.coerce.number().int().min(1).max(3650).default(30),
  reviewRetentionDays: z.coerce.number().int().min(1).max(3650).default(30),
  alarmEmail: z.string().email().optional(),
});

/**
 * Reads the app's settings from CDK context, falling back to what the CDK CLI puts in the environment
 * (CDK_DEFAULT_REGION, CDK_DEFAULT_ACCOUNT) and then to defaults, so `cdk synth` needs neither credentials nor
 * lookups.
 */
export function readInfraConfig(
  context: (key: string) => unknown,
  env: Record<string, string | undefined> = process.env,
): InfraConfig {
  const str = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v));
  const raw = {
    stackName: str(context(CONTEXT_KEYS.stackName)),
    region: str(context(CONTEXT_KEYS.region)) ?? str(env.CDK_DEFAULT_REGION),
    account: str(env.CDK_DEFAULT_ACCOUNT),
    edge: str(context(CONTEXT_KEYS.edge)),
    retrainQuietSeconds: str(context(CONTEXT_KEYS.retrainQuietSeconds)),
    candidateRetentionDays: str(context(CONTEXT_KEYS.candidateRetentionDays)),
    reviewRetentionDays: str(context(CONTEXT_KEYS.reviewRetentionDays)),
    alarmEmail: str(context(CONTEXT_KEYS.alarmEmail)),
  };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path[0];
    const where =
      key === 'account'
        ? 'CDK_DEFAULT_ACCOUNT'
        : key === 'region' && raw.region !== undefined && context(CONTEXT_KEYS.region) === undefined
          ? 'CDK_DEFAULT_REGION'
          : typeof key === 'string' && key in CONTEXT_KEYS
            ? `context ${CONTEXT_KEYS[key as keyof typeof CONTEXT_KEYS]}`
            : 'configuration';
    throw new InfraConfigError(`${where}: ${issue?.message}`, { cause: parsed.error });
  }
  const c = parsed.data;
  return {
    stackName: c.stackName,
    region: c.region,
    ...(c.account ? { account: c.account } : {}),
    edge: c.edge,
    retrainQuietSeconds: c.retrainQuietSeconds,
    candidateRetentionDays: c.candidateRetentionDays,
    reviewRetentionDays: c.reviewRetentionDays,
    ...(c.alarmEmail ? { alarmEmail: c.alarmEmail } : {}),
  };
}
