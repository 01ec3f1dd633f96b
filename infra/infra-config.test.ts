import { describe, expect, it } from 'vitest';
import { ConfigError } from '../shared/config.js';
import { parseStackOutputs, STACK_OUTPUTS } from '../shared/stack-outputs.js';
import { CONTEXT_KEYS, readInfraConfig } from './infra-config.js';
import { InfraConfigError } from './infra-errors.js';

const noContext = () => undefined;
const contextOf = (values: Record<string, unknown>) => (key: string) => values[key];

describe('readInfraConfig', () => {
  it('defaults to the Lambda@Edge variant in us-east-1 without account or credentials', () => {
    expect(readInfraConfig(noContext, {})).toEqual({
      stackName: 'Headstart',
      region: 'us-east-1',
      edge: 'lambda-edge',
      retrainQuietSeconds: 30,
      candidateRetentionDays: 30,
      reviewRetentionDays: 30,
    });
  });

  it('keeps review items for -c headstart:reviewRetentionDays days, a whole number from 1', () => {
    const config = readInfraConfig(contextOf({ [CONTEXT_KEYS.reviewRetentionDays]: '14' }), {});
    expect(config.reviewRetentionDays).toBe(14);
    for (const bad of ['0', '2.5', 'forever']) {
      expect(() => readInfraConfig(contextOf({ [CONTEXT_KEYS.reviewRetentionDays]: bad }), {})).toThrow(
        /headstart:reviewRetentionDays/,
      );
    }
  });

  it('keeps unpromoted model versions for -c headstart:candidateRetentionDays days', () => {
    const config = readInfraConfig(contextOf({ [CONTEXT_KEYS.candidateRetentionDays]: '7' }), {});
    expect(config.candidateRetentionDays).toBe(7);
    expect(() => readInfraConfig(contextOf({ [CONTEXT_KEYS.candidateRetentionDays]: '0' }), {})).toThrow(
      /headstart:candidateRetentionDays/,
    );
  });

  it('takes the region and account the CDK CLI puts in the environment, context first', () => {
    const env = { CDK_DEFAULT_REGION: 'eu-west-1', CDK_DEFAULT_ACCOUNT: '123456789012' };
    expect(readInfraConfig(noContext, env)).toMatchObject({ region: 'eu-west-1', account: '123456789012' });
    expect(readInfraConfig(contextOf({ [CONTEXT_KEYS.region]: 'ap-southeast-2' }), env).region).toBe(
      'ap-southeast-2',
    );
  });

  it('selects the Function URL variant with -c headstart:edge=function-url', () => {
    const config = readInfraConfig(contextOf({ [CONTEXT_KEYS.edge]: 'function-url' }), {});
    expect(config.edge).toBe('function-url');
  });

  it('names the context key that is wrong', () => {
    const bad = () => readInfraConfig(contextOf({ [CONTEXT_KEYS.edge]: 'cloudflare' }), {});
    expect(bad).toThrow(InfraConfigError);
    expect(bad).toThrow(/headstart:edge/);
    expect(() => readInfraConfig(contextOf({ [CONTEXT_KEYS.retrainQuietSeconds]: '9000' }), {})).toThrow(
      /headstart:retrainQuietSeconds/,
    );
    expect(() => readInfraConfig(noContext, { CDK_DEFAULT_REGION: 'mars' })).toThrow(/CDK_DEFAULT_REGION/);
  });
});

describe('parseStackOutputs', () => {
  const outputs = {
    [STACK_OUTPUTS.bucketName]: 'headstart-bucket83908e77-abc',
    [STACK_OUTPUTS.endpointUrl]: 'https://d111111abcdef8.cloudfront.net',
    [STACK_OUTPUTS.region]: 'eu-west-1',
    [STACK_OUTPUTS.edgeVariant]: 'lambda-edge',
    [STACK_OUTPUTS.uploadsQueueName]: 'Headstart-PipelineUploadsQueue',
    [STACK_OUTPUTS.trainingQueueName]: 'Headstart-PipelineTrainingQueue',
    [STACK_OUTPUTS.uploadsDeadLetterQueueName]: 'Headstart-PipelineUploadsDeadLetterQueue',
    [STACK_OUTPUTS.trainingDeadLetterQueueName]: 'Headstart-PipelineTrainingDeadLetterQueue',
    [STACK_OUTPUTS.alarmTopicArn]: 'arn:aws:sns:eu-west-1:123456789012:Headstart-AlarmTopic',
    [STACK_OUTPUTS.defaultBackboneId]: 'mnv2-nsfwjs.block_13_depthwise_relu.224.i8c',
  };

  it('reads the file cdk deploy --outputs-file writes, picking the stack that has the outputs', () => {
    const parsed = parseStackOutputs({ HeadstartEdge: {}, Headstart: outputs });
    expect(parsed).toMatchObject({
      bucketName: outputs.BucketName,
      region: 'eu-west-1',
      edgeVariant: 'lambda-edge',
    });
  });

  it('drops a trailing slash from a Function URL endpoint', () => {
    const parsed = parseStackOutputs({
      ...outputs,
      [STACK_OUTPUTS.endpointUrl]: 'https://abc.lambda-url.eu-west-1.on.aws/',
      [STACK_OUTPUTS.edgeVariant]: 'function-url',
    });
    expect(parsed.endpointUrl).toBe('https://abc.lambda-url.eu-west-1.on.aws');
  });

  it('says which output is missing', () => {
    const { [STACK_OUTPUTS.endpointUrl]: _, ...partial } = outputs;
    expect(() => parseStackOutputs({ Headstart: partial })).toThrow(/EndpointUrl/);
    expect(() => parseStackOutputs({ Other: { Foo: 'bar' } })).toThrow(ConfigError);
  });
});
