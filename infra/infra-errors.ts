import { areaError } from '../shared/headstart-error.js';

/** Errors raised while synthesizing the CDK app: bad context, failed bundles, a backbone that cannot be built. */
export class InfraError extends areaError('InfraError') {}

/** A `-c headstart:*` context value (or CDK_DEFAULT_* variable) that the app cannot use. */
export class InfraConfigError extends InfraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_infra_config', message, options);
    this.name = 'InfraConfigError';
  }
}

/** esbuild failed, or a file a bundle needs (wasm binary, native package) is missing. */
export class BundleError extends InfraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bundle_failed', message, options);
    this.name = 'BundleError';
  }
}

/** A bundle came out larger than its Lambda limit allows. */
export class BundleTooLargeError extends InfraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bundle_too_large', message, options);
    this.name = 'BundleTooLargeError';
  }
}
