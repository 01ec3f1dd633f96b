import { execFile, spawnSync } from 'node:child_process';

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

/**
 * Runs cfn-lint over synthesized templates; any error or warning (beyond IGNORED_CHECKS) fails. Asynchronous:
 * cfn-lint takes tens of seconds on a busy machine, and a caller's event loop (a test worker's) must stay free.
 */
export async function lintTemplates(templates: readonly TemplateToLint[]): Promise<LintResult> {
  const missing = cfnLintMissing();
  if (missing) return { status: 'skipped', reason: missing };
  // One run (cfn-lint's start-up dominates); every template is checked against every stack's region.
  const regions = [...new Set(templates.map((t) => t.region))];
  const args = [
    ...['--format', 'parseable', '--regions', ...regions],
    ...['--ignore-checks', ...Object.keys(IGNORED_CHECKS)],
    '--',
    ...templates.map((t) => t.file),
  ];
  return new Promise((resolve) => {
    execFile('cfn-lint', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (!error) return resolve({ status: 'passed', output });
      const exitCode = typeof error.code === 'number' ? error.code : -1;
      resolve({ status: 'failed', output: output || String(error), exitCode });
    });
  });
}
