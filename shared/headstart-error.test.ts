import { describe, expect, it } from 'vitest';
import { AuthError, InvalidKeyArgumentError, InvalidKeyRecordError } from './auth/auth-errors.js';
import { BackboneError, InvalidBackboneError } from './backbone/backbone-errors.js';
import { ConfigError } from './config.js';
import {
  DatasetError,
  FeatureFileError,
  UploadKeyError,
  UploadTooLargeError,
} from './dataset/dataset-errors.js';
import { EventParseError } from './dataset/s3-events.js';
import { FineTuneError, InvalidTopError } from './finetune/finetune-errors.js';
import { codeOf, HeadstartError, messageOf } from './headstart-error.js';
import { ForbiddenError, HttpError, NotFoundError, UnauthorizedError } from './http/http-errors.js';
import { CorruptImageError, ImageError, TooManyPixelsError } from './image/image-errors.js';
import { StackLockError } from './local/stack-lock.js';
import {
  InvalidVersionError,
  ModelError,
  NoModelError,
  PointerConflictError,
} from './models/model-errors.js';
import { StoreError, StoreUnavailableError } from './store/store-errors.js';
import { InvalidHeadError, TooFewLabelsError, TrainingError } from './train/train-errors.js';

describe('HeadstartError', () => {
  it('is an Error with its code, message, status, exit code and a stack', () => {
    const err = new HeadstartError('some_code', 'something is wrong', { status: 409, exitCode: 2 });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('HeadstartError');
    expect(err.code).toBe('some_code');
    expect(err.message).toBe('something is wrong');
    expect(err.status).toBe(409);
    expect(err.exitCode).toBe(2);
    expect(err.stack).toContain('something is wrong');
  });

  it('keeps its cause', () => {
    const cause = new Error('socket hang up');
    expect(new HeadstartError('x', 'y', { cause }).cause).toBe(cause);
  });

  it('has no own cause, status or exit code when none is given, so logs do not show them as undefined', () => {
    for (const err of [
      new HeadstartError('x', 'y'),
      new HeadstartError('x', 'y', { cause: undefined, status: undefined, exitCode: undefined }),
    ]) {
      expect(Object.hasOwn(err, 'cause')).toBe(false);
      expect(Object.hasOwn(err, 'status')).toBe(false);
      expect(Object.hasOwn(err, 'exitCode')).toBe(false);
    }
  });
});

describe('messageOf', () => {
  it("says an error's message", () => {
    expect(messageOf(new HeadstartError('x', 'the store is unreachable'))).toBe('the store is unreachable');
    expect(messageOf(new TypeError('not a function'))).toBe('not a function');
  });

  it('says what was thrown when it is not an error', () => {
    expect(messageOf('plain string')).toBe('plain string');
    expect(messageOf(42)).toBe('42');
    expect(messageOf(undefined)).toBe('undefined');
    expect(messageOf(null)).toBe('null');
    expect(messageOf({ message: 'an error from another realm' })).toBe('an error from another realm');
    expect(messageOf({ message: 7 })).toBe('[object Object]');
    expect(messageOf(Object.create(null))).toBe('[object Object]');
  });
});

describe('codeOf', () => {
  it("says a Headstart error's code, or the string code of Node's and SDKs' errors", () => {
    expect(codeOf(new StoreUnavailableError('down'))).toBe('store_unavailable');
    expect(codeOf(Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(codeOf(Object.assign(new Error('numeric'), { code: 42 }))).toBeUndefined();
    expect(codeOf(new Error('no code'))).toBeUndefined();
    expect(codeOf(null)).toBeUndefined();
    expect(codeOf('string')).toBeUndefined();
  });
});

describe('area errors', () => {
  const cases: {
    err: HeadstartError;
    base: abstract new (...args: never[]) => Error;
    name: string;
    code: string;
  }[] = [
    { err: new AuthError('a', 'm'), base: AuthError, name: 'AuthError', code: 'a' },
    {
      err: new InvalidKeyRecordError('m'),
      base: AuthError,
      name: 'InvalidKeyRecordError',
      code: 'invalid_key_record',
    },
    { err: new BackboneError('b', 'm'), base: BackboneError, name: 'BackboneError', code: 'b' },
    {
      err: new InvalidBackboneError('m'),
      base: BackboneError,
      name: 'InvalidBackboneError',
      code: 'invalid_backbone',
    },
    { err: new ConfigError('m'), base: ConfigError, name: 'ConfigError', code: 'invalid_config' },
    { err: new DatasetError('d', 'm'), base: DatasetError, name: 'DatasetError', code: 'd' },
    {
      err: new FeatureFileError('m'),
      base: DatasetError,
      name: 'FeatureFileError',
      code: 'invalid_feature_file',
    },
    { err: new EventParseError('m'), base: EventParseError, name: 'EventParseError', code: 'invalid_event' },
    { err: new FineTuneError('f', 'm'), base: FineTuneError, name: 'FineTuneError', code: 'f' },
    { err: new InvalidTopError('m'), base: FineTuneError, name: 'InvalidTopError', code: 'invalid_top' },
    { err: new HttpError(418, 'h', 'm'), base: HttpError, name: 'HttpError', code: 'h' },
    { err: new ImageError('i', 'm'), base: ImageError, name: 'ImageError', code: 'i' },
    { err: new StackLockError('m'), base: StackLockError, name: 'StackLockError', code: 'stack_running' },
    { err: new ModelError('mo', 'm'), base: ModelError, name: 'ModelError', code: 'mo' },
    {
      err: new InvalidVersionError('m'),
      base: ModelError,
      name: 'InvalidVersionError',
      code: 'invalid_version',
    },
    { err: new StoreError('s', 'm'), base: StoreError, name: 'StoreError', code: 's' },
    { err: new TrainingError('t', 'm'), base: TrainingError, name: 'TrainingError', code: 't' },
    { err: new InvalidHeadError('m'), base: TrainingError, name: 'InvalidHeadError', code: 'invalid_head' },
  ];

  it('are Headstart errors that keep their own class, name and code', () => {
    for (const { err, base, name, code } of cases) {
      expect(err, name).toBeInstanceOf(HeadstartError);
      expect(err, name).toBeInstanceOf(base);
      expect(err.name).toBe(name);
      expect(err.code, name).toBe(code);
    }
  });

  it('pass their cause to the root', () => {
    const cause = new Error('inner');
    expect(new AuthError('a', 'm', { cause }).cause).toBe(cause);
    expect(new ConfigError('m', { cause }).cause).toBe(cause);
    expect(new CorruptImageError('bad huffman table', { cause }).cause).toBe(cause);
    expect(new NotFoundError('n', 'm', { cause }).cause).toBe(cause);
  });

  it('carry the HTTP status their area knows, and none when a client could not have caused them', () => {
    const statuses = [
      new CorruptImageError('bad huffman table'),
      new TooManyPixelsError(10_000, 10_000, 1_000_000),
      new NoModelError('m'),
      new PointerConflictError('m'),
      new InvalidKeyArgumentError('m'),
      new UploadTooLargeError('m'),
      new UnauthorizedError('missing_api_key', 'm'),
      new ForbiddenError('invalid_api_key', 'm'),
      new NotFoundError('unknown_project', 'm'),
      new StoreUnavailableError('m'),
      new InvalidVersionError('m'),
      new TooFewLabelsError(1),
      new ConfigError('m'),
    ].map((e) => [e.code, e.status]);
    expect(statuses).toEqual([
      ['corrupt_image', 422],
      ['too_many_pixels', 422],
      ['no_model', 404],
      ['pointer_conflict', 409],
      ['invalid_key_argument', 400],
      ['upload_too_large', 413],
      ['missing_api_key', 401],
      ['invalid_api_key', 403],
      ['unknown_project', 404],
      ['store_unavailable', undefined],
      ['invalid_version', undefined],
      ['too_few_labels', undefined],
      ['invalid_config', undefined],
    ]);
  });

  it('end a command with exit code 2 when they are about what the user gave: configuration and dataset names', () => {
    expect(new ConfigError('m').exitCode).toBe(2);
    expect(new UploadKeyError('invalid_project', 'm').exitCode).toBe(2);
    expect(new DatasetError('no_label', 'm').exitCode).toBe(2);
    expect(new StoreError('s', 'm').exitCode).toBeUndefined();
    expect(new ModelError('mo', 'm').exitCode).toBeUndefined();
  });
});
