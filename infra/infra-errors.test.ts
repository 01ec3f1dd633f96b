import { describe, expect, it } from 'vitest';
import { HeadstartError } from '../shared/headstart-error.js';
import { BundleError, InfraConfigError, InfraError } from './infra-errors.js';

describe('infra errors', () => {
  it('are Headstart errors that keep their own class, name, code and cause', () => {
    const cause = new Error('esbuild: could not resolve');
    const err = new BundleError('esbuild failed for functions/edge/lambda-edge.ts', { cause });
    expect(err).toBeInstanceOf(HeadstartError);
    expect(err).toBeInstanceOf(InfraError);
    expect([err.name, err.code, err.cause]).toEqual(['BundleError', 'bundle_failed', cause]);
    expect(new InfraConfigError('bad context').code).toBe('invalid_infra_config');
  });
});
