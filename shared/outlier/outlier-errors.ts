import { areaError } from '../headstart-error.js';

/** A detector that cannot be fitted or read back; `code` is stable, `message` names the problem. */
export class OutlierError extends areaError('OutlierError') {}
