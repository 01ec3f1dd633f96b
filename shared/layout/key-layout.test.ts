import { describe, expect, it } from 'vitest';
import { layout, parseReviewRecordKey, parseTrainingKey, prefixes } from './key-layout.js';

describe('key layout', () => {
  it('reads back the training keys it builds, and nothing else under training/', () => {
    for (const [key, file] of [
      [layout.trainingRequest('closet'), 'request'],
      [layout.trainingState('closet'), 'state'],
      [layout.trainingLease('closet'), 'lease'],
    ] as const) {
      expect(parseTrainingKey(key)).toEqual({ project: 'closet', file });
    }
    expect(parseTrainingKey('training/closet/notes.json')).toBeUndefined();
    expect(parseTrainingKey('training/a/b/request.json')).toBeUndefined();
    expect(parseTrainingKey(layout.currentPointer('closet'))).toBeUndefined();
  });

  it('files decisions under the project models prefix, beside its versions', () => {
    const key = layout.decision('closet', 'v1');
    expect(key.startsWith(layout.modelsPrefix('closet'))).toBe(true);
    expect(key).not.toBe(layout.versionFile('closet', 'v1', 'manifest.json'));
  });

  it('reads back review records, queued and labelled, and keeps everything of review under review/', () => {
    const id = 'a'.repeat(64);
    expect(parseReviewRecordKey(layout.reviewItem('closet', id))).toEqual({
      project: 'closet',
      id,
      state: 'queued',
    });
    expect(parseReviewRecordKey(layout.reviewLabelled('closet', id))).toEqual({
      project: 'closet',
      id,
      state: 'labelled',
    });
    expect(parseReviewRecordKey(layout.reviewImage('closet', id))).toBeUndefined();
    for (const key of [
      layout.reviewItem('closet', id),
      layout.reviewImage('closet', id),
      layout.reviewLabelled('closet', id),
    ]) {
      expect(key.startsWith(layout.reviewPrefix('closet'))).toBe(true);
      expect(key.startsWith(prefixes.review)).toBe(true);
    }
    expect(layout.reviewItem('closet', id).startsWith(layout.reviewItemsPrefix('closet'))).toBe(true);
  });
});
