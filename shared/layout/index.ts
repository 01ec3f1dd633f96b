export {
  everythingUnder,
  layout,
  parseReviewRecordKey,
  parseTrainingKey,
  prefixes,
  type TopPrefix,
  type TrainingFile,
} from './key-layout.js';
