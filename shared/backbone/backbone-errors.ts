import { areaError } from '../headstart-error.js';

/** Errors raised while loading, exporting or running a backbone. */
export class BackboneError extends areaError('BackboneError') {}

/** The manifest or package is malformed, or names a layer, node or op Headstart cannot run. */
export class InvalidBackboneError extends BackboneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_backbone', message, options);
    this.name = 'InvalidBackboneError';
  }
}

/** The weights do not hash to the sha256 recorded in the manifest. */
export class BackboneIntegrityError extends BackboneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backbone_integrity', message, options);
    this.name = 'BackboneIntegrityError';
  }
}

/** An exported backbone strays too far from its source; publishing it would change what users' heads see. */
export class FidelityError extends BackboneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('fidelity_below_threshold', message, options);
    this.name = 'FidelityError';
  }
}

/** Images handed to a backbone do not match its input size. */
export class BackboneInputError extends BackboneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backbone_input', message, options);
    this.name = 'BackboneInputError';
  }
}

/** A graph-model node below the cut uses an op (or an attribute of one) that Headstart's graph cannot express. */
export class UnsupportedGraphOpError extends BackboneError {
  readonly op: string;
  readonly node: string;
  constructor(options: { op: string; node: string; detail?: string }) {
    super(
      'unsupported_graph_op',
      `graph node '${options.node}' uses op ${options.op}${options.detail ? ` (${options.detail})` : ''}, ` +
        'which Headstart cannot convert below the cut',
    );
    this.name = 'UnsupportedGraphOpError';
    this.op = options.op;
    this.node = options.node;
  }
}
