import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface FunctionRole {
  role: iam.Role;
  logGroup: logs.LogGroup;
}

/**
 * A regional function's role and log group. The role may write to that one log group and nothing else; the
 * managed AWSLambdaBasicExecutionRole would allow every log group in the account.
 */
export function createFunctionRole(scope: Construct, id: string, description: string): FunctionRole {
  const c = new Construct(scope, id);
  const logGroup = new logs.LogGroup(c, 'Logs', {
    retention: logs.RetentionDays.THREE_MONTHS,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(c, 'Role', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description,
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }),
  );
  return { role, logGroup };
}
