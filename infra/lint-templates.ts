// CI step after `npx cdk synth`: lints every synthesized template with cfn-lint.
// Usage: npx tsx infra/lint-templates.ts [cloud assembly dir, default cdk.out]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { lintTemplates } from './cfn-lint.js';

const manifestSchema = z.object({
  artifacts: z.record(
    z.object({
      type: z.string(),
      environment: z.string().optional(),
      properties: z.object({ templateFile: z.string().optional() }).optional(),
    }),
  ),
});

const dir = process.argv[2] ?? 'cdk.out';
const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
const templates = Object.values(manifest.artifacts)
  .filter((a) => a.type === 'aws:cloudformation:stack' && a.properties?.templateFile)
  .map((a) => ({
    file: join(dir, a.properties!.templateFile!),
    // aws://<account>/<region>
    region: a.environment?.split('/').pop() || 'us-east-1',
  }));
if (templates.length === 0) {
  process.stderr.write(`no stack templates in ${dir}; run npx cdk synth first\n`);
  process.exit(1);
}
const result = await lintTemplates(templates);
if (result.status === 'skipped') {
  process.stderr.write(`[headstart] ${result.reason}\n`);
} else {
  if (result.output) process.stdout.write(`${result.output}\n`);
  process.stderr.write(
    `[headstart] cfn-lint ${result.status} on ${templates.map((t) => t.file).join(', ')}\n`,
  );
  if (result.status === 'failed') process.exit(1);
}
