import { z } from 'zod';
import { ConfigError } from './config.js';

/**
 * The main stack's CloudFormation outputs: the contract with the CLI, which reads them from
 * `npx cdk deploy --all --outputs-file <file>` (or `aws cloudformation describe-stacks`).
 */
export const STACK_OUTPUTS = {
  bucketName: 'BucketName',
  endpointUrl: 'EndpointUrl',
  region: 'Region',
  edgeVariant: 'EdgeVariant',
  uploadsQueueName: 'UploadsQueueName',
  trainingQueueName: 'TrainingQueueName',
  uploadsDeadLetterQueueName: 'UploadsDeadLetterQueueName',
  trainingDeadLetterQueueName: 'TrainingDeadLetterQueueName',
  alarmTopicArn: 'AlarmTopicArn',
  defaultBackboneId: 'DefaultBackboneId',
} as const;

const outputsSchema = z.object({
  [STACK_OUTPUTS.bucketName]: z.string().min(3),
  [STACK_OUTPUTS.endpointUrl]: z.string().url(),
  [STACK_OUTPUTS.region]: z.string().min(1),
  [STACK_OUTPUTS.edgeVariant]: z.enum(['lambda-edge', 'function-url']),
  [STACK_OUTPUTS.uploadsQueueName]: z.string().min(1),
  [STACK_OUTPUTS.trainingQueueName]: z.string().min(1),
  [STACK_OUTPUTS.uploadsDeadLetterQueueName]: z.string().min(1),
  [STACK_OUTPUTS.trainingDeadLetterQueueName]: z.string().min(1),
  [STACK_OUTPUTS.alarmTopicArn]: z.string().min(1),
  [STACK_OUTPUTS.defaultBackboneId]: z.string().min(1),
});

export interface HeadstartOutputs {
  bucketName: string;
  endpointUrl: string;
  region: string;
  edgeVariant: 'lambda-edge' | 'function-url';
  uploadsQueueName: string;
  trainingQueueName: string;
  uploadsDeadLetterQueueName: string;
  trainingDeadLetterQueueName: string;
  alarmTopicArn: string;
  defaultBackboneId: string;
}

/**
 * Reads the outputs from what `cdk deploy --outputs-file` writes (`{"<stack>": {"BucketName": ...}}`), picking
 * the stack that has them, or from one stack's flat output map.
 */
export function parseStackOutputs(raw: unknown, stackName?: string): HeadstartOutputs {
  const record = z.record(z.unknown()).safeParse(raw);
  if (!record.success) throw new ConfigError('stack outputs must be a JSON object');
  const flat = STACK_OUTPUTS.bucketName in record.data ? record.data : undefined;
  const candidates = flat
    ? [flat]
    : Object.entries(record.data)
        .filter(([name, v]) => (stackName ? name === stackName : true) && typeof v === 'object' && v !== null)
        .map(([, v]) => v as Record<string, unknown>)
        .filter((v) => STACK_OUTPUTS.bucketName in v);
  if (candidates.length !== 1) {
    throw new ConfigError(
      candidates.length === 0
        ? `no stack outputs with ${STACK_OUTPUTS.bucketName}${stackName ? ` for stack ${stackName}` : ''}`
        : 'several stacks have Headstart outputs; name the stack',
    );
  }
  const parsed = outputsSchema.safeParse(candidates[0]);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`stack output ${issue?.path.join('.')}: ${issue?.message}`, {
      cause: parsed.error,
    });
  }
  const o = parsed.data;
  return {
    bucketName: o[STACK_OUTPUTS.bucketName],
    endpointUrl: o[STACK_OUTPUTS.endpointUrl].replace(/\/+$/, ''),
    region: o[STACK_OUTPUTS.region],
    edgeVariant: o[STACK_OUTPUTS.edgeVariant],
    uploadsQueueName: o[STACK_OUTPUTS.uploadsQueueName],
    trainingQueueName: o[STACK_OUTPUTS.trainingQueueName],
    uploadsDeadLetterQueueName: o[STACK_OUTPUTS.uploadsDeadLetterQueueName],
    trainingDeadLetterQueueName: o[STACK_OUTPUTS.trainingDeadLetterQueueName],
    alarmTopicArn: o[STACK_OUTPUTS.alarmTopicArn],
    defaultBackboneId: o[STACK_OUTPUTS.defaultBackboneId],
  };
}
