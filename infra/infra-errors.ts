import { areaError, errorKind } from '../shared/headstart-error.js';

/** Errors raised while synthesizing the CDK app: bad context, failed bundles, a backbone that cannot be built. */
export class InfraError extends areaError('InfraError') {}

/** A `-c headstart:*` context value (or CDK_DEFAULT_* variable) that the app cannot use. */
export class InfraConfigError extends errorKind(InfraError, {
  name: 'InfraConfigError',
  code: 'invalid_infra_config',
}) {}

/** esbuild failed, or a file a bundle needs (wasm binary, native package) is missing. */
export class BundleError extends errorKind(InfraError, { name: 'BundleError', code: 'bundle_failed' }) {}

/** A bundle came out larger than its Lambda limit allows. */
export class BundleTooLargeError extends errorKind(InfraError, {
  name: 'BundleTooLargeError',
  code: 'bundle_too_large',
}) {}
