export { layout, parseTrainingKey, type TrainingFile } from './key-layout.js';
