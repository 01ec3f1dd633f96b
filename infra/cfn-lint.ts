import { spawnSync } from 'node:child_process';

export interface TemplateToLint {
  file: string;
  /** The stack's region: cfn-lint checks resource types and properties against that region's spec. */
  region: string;
}

export type LintResult =
  | { status: 'passed'; output: string }
  | { status: 'failed'; output: string; exitCode: number }
  | { status: 'skipped'; reason: string };

/**
 * Checks cfn-lint ignores, each with its reason: CDK adds an explicit DependsOn next to a GetAtt/Ref on the
 * same resource (role before function, queue before notification), which is redundant but harmless.
 */
export const IGNORED_CHECKS: Record<string, string> = {
  W3005: 'CDK emits explicit DependsOn alongside Ref/GetAtt to the same resource; redundant, not wrong',
};

/** Whether cfn-lint is on PATH; undefined when it is, else why not. */
export function cfnLintMissing(): string | undefined {
  const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return 'cfn-lint is not installed (pip install cfn-lint); CloudFormation template linting is skipped';
  }
  return undefined;
}

/** Runs cfn-lint over synthesized templates; any error or warning (beyond IGNORED_CHECKS) fails. */
export function lintTemplates(templates: readonly TemplateToLint[]): LintResult {
  const missing = cfnLintMissing();
  if (missing) return { status: 'skipped', reason: missing };
  // One run (cfn-lint's start-up dominates); every template is checked against every stack's region.
  const regions = [...new Set(templates.map((t) => t.region))];
  const run = spawnSync(
    'cfn-lint',
    [
      '--format',
      'parseable',
      '--regions',
      ...regions,
      '--ignore-checks',
      ...Object.keys(IGNORED_CHECKS),
      '--',
      ...templates.map((t) => t.file),
    ],
    { encoding: 'utf8' },
  );
  if (run.error) return { status: 'failed', output: String(run.error), exitCode: -1 };
  const output = `${run.stdout}${run.stderr}`.trim();
  return run.status === 0
    ? { status: 'passed', output }
    : { status: 'failed', output, exitCode: run.status ?? 1 };
}
