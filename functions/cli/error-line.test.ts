import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/config.js';
import { FeatureFileError, UploadKeyError } from '../../shared/dataset/dataset-errors.js';
import { HeadstartError } from '../../shared/headstart-error.js';
import { PointerConflictError } from '../../shared/models/model-errors.js';
import { StoreUnavailableError } from '../../shared/store/store-errors.js';
import { ApiError, CliError, UsageError } from './cli-errors.js';
import { errorLine } from './headstart.js';

describe('errorLine', () => {
  it('ends with exit code 2 and the bare message for usage, configuration and dataset errors', () => {
    expect(errorLine(new UsageError('--project is required'))).toEqual({
      line: '--project is required',
      code: 2,
    });
    expect(errorLine(new ConfigError('environment variable PORT: Expected number'))).toEqual({
      line: 'environment variable PORT: Expected number',
      code: 2,
    });
    expect(errorLine(new UploadKeyError('invalid_project', "project name 'X' is not allowed"))).toEqual({
      line: "project name 'X' is not allowed",
      code: 2,
    });
    expect(errorLine(new FeatureFileError('not a Headstart feature file (bad magic)')).code).toBe(2);
  });

  it("ends with the CLI error's own exit code and message", () => {
    expect(new UsageError('x')).toBeInstanceOf(HeadstartError);
    expect([new UsageError('x').code, new CliError('x').code]).toEqual(['invalid_usage', 'command_failed']);
    expect(errorLine(new CliError('the training queue q was not found'))).toEqual({
      line: 'the training queue q was not found',
      code: 1,
    });
    expect(errorLine(new CliError('/x has no Headstart store', { exitCode: 2 }))).toEqual({
      line: '/x has no Headstart store',
      code: 2,
    });
    expect(errorLine(new ApiError({ status: 403, code: 'invalid_api_key', detail: 'no access' }))).toEqual({
      line: '403 invalid_api_key: no access',
      code: 1,
    });
  });

  it('says the code first and ends with exit code 1 for any other error', () => {
    expect(errorLine(new StoreUnavailableError('s3 is down'))).toEqual({
      line: 'store_unavailable: s3 is down',
      code: 1,
    });
    expect(errorLine(new PointerConflictError('someone promoted v3 first'))).toEqual({
      line: 'pointer_conflict: someone promoted v3 first',
      code: 1,
    });
    expect(errorLine(new HeadstartError('future_code', 'told', { exitCode: 3 }))).toEqual({
      line: 'told',
      code: 3,
    });
    expect(errorLine(new TypeError('x is not a function'))).toEqual({ line: 'x is not a function', code: 1 });
    expect(errorLine('thrown string')).toEqual({ line: 'thrown string', code: 1 });
    expect(errorLine(null)).toEqual({ line: 'null', code: 1 });
  });
});
