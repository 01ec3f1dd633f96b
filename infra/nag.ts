import { Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

/** One cdk-nag rule (or one finding of it, `AwsSolutions-IAM5[Resource::...]`) and why it does not apply. */
export interface NagAcknowledgement {
  id: string;
  reason: string;
}

/** Records acknowledgements on a construct and everything under it; each carries its reason in code. */
export function acknowledge(scope: IConstruct, ...acks: NagAcknowledgement[]): void {
  Validations.of(scope).acknowledge(...acks);
}

/**
 * cdk-nag names a wildcard finding by the resource as written in the template, references flattened to
 * `<LogicalId.Attr>`; this mirrors its flattening so acknowledgements can be made for exactly the resources a
 * policy grants, and stop matching if those resources change.
 */
export function flattenCfnReference(node: unknown): string {
  if (node === undefined || node === null) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (Array.isArray(node)) return JSON.stringify(node);
  const o = node as Record<string, unknown>;
  if (o['Fn::Join']) {
    const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
    return items.map(flattenCfnReference).join(delimiter);
  }
  if (o['Fn::Sub']) return flattenCfnReference(o['Fn::Sub']);
  if (o['Fn::GetAtt']) {
    const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
  }
  if (o['Fn::ImportValue']) return flattenCfnReference(o['Fn::ImportValue']);
  if (o.Ref) return `<${flattenCfnReference(o.Ref)}>`;
  return JSON.stringify(node);
}

/**
 * Acknowledges the IAM5 findings of the wildcard resources in `statements` (granted by `policy`), with a reason
 * per resource. A wildcard the reasons do not cover is left unacknowledged, so cdk-nag still fails on it.
 */
export function acknowledgeWildcardResources(
  policy: IConstruct,
  statements: readonly iam.PolicyStatement[],
  reasonFor: (flatResource: string) => string | undefined,
): void {
  const stack = Stack.of(policy);
  const seen = new Set<string>();
  for (const statement of statements) {
    const json = stack.resolve(statement.toStatementJson()) as { Resource?: unknown };
    const resources = Array.isArray(json.Resource) ? json.Resource : [json.Resource];
    for (const r of resources) {
      const flat = flattenCfnReference(r);
      if (!flat.includes('*') || seen.has(flat)) continue;
      seen.add(flat);
      const reason = reasonFor(flat);
      if (reason) acknowledge(policy, { id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
    }
  }
}
