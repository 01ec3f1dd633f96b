export { createUiApp } from './ui-app.js';
export type { UiDeps, UiPredictor } from './ui-context.js';
export { UiError } from './ui-errors.js';
