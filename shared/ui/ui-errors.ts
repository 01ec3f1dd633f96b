import { areaError } from '../headstart-error.js';

/** Errors the dashboard raises itself; `status` is what the page or the JSON answer carries. */
export class UiError extends areaError('UiError') {}
