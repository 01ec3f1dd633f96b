export {
  everythingUnder,
  layout,
  parseTrainingKey,
  prefixes,
  type TopPrefix,
  type TrainingFile,
} from './key-layout.js';
