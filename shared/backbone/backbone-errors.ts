import { areaError, errorKind } from '../headstart-error.js';

/** Errors raised while loading, exporting or running a backbone. */
export class BackboneError extends areaError('BackboneError') {}

/** The manifest or package is malformed, or names a layer, node or op Headstart cannot run. */
export class InvalidBackboneError extends errorKind(BackboneError, {
  name: 'InvalidBackboneError',
  code: 'invalid_backbone',
}) {}

/** The weights do not hash to the sha256 recorded in the manifest. */
export class BackboneIntegrityError extends errorKind(BackboneError, {
  name: 'BackboneIntegrityError',
  code: 'backbone_integrity',
}) {}

/** An exported backbone strays too far from its source; publishing it would change what users' heads see. */
export class FidelityError extends errorKind(BackboneError, {
  name: 'FidelityError',
  code: 'fidelity_below_threshold',
}) {}

/** Images handed to a backbone do not match its input size. */
export class BackboneInputError extends errorKind(BackboneError, {
  name: 'BackboneInputError',
  code: 'backbone_input',
}) {}

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
