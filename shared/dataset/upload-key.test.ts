import { describe, expect, it } from 'vitest';
import { decodeEventKey, parseUploadKey, projectOf } from './upload-key.js';

const refused = (key: string) => {
  try {
    parseUploadKey(key);
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'accepted';
};

describe('upload keys', () => {
  it('reads project, label and file from uploads/<project>/<label>/<file>', () => {
    expect(parseUploadKey('uploads/shoes/red boots/IMG_0001.JPG')).toEqual({
      key: 'uploads/shoes/red boots/IMG_0001.JPG',
      project: 'shoes',
      label: 'red boots',
      file: 'IMG_0001.JPG',
    });
  });

  it('treats NFD and NFC spellings of a label as the same label', () => {
    const nfd = 'cafe\u0301';
    expect(parseUploadKey(`uploads/p/${nfd}/a.jpg`).label).toBe('café'.normalize('NFC'));
  });

  it.each([
    ['uploads/shoes/a.jpg', 'key_too_shallow'],
    ['uploads/shoes/boots/left/a.jpg', 'key_too_deep'],
    ['uploads/shoes//a.jpg', 'empty_segment'],
    ['uploads//boots/a.jpg', 'empty_segment'],
    ['uploads/Shoes/boots/a.jpg', 'invalid_project'],
    ['uploads/-shoes/boots/a.jpg', 'invalid_project'],
    [`uploads/${'p'.repeat(64)}/boots/a.jpg`, 'invalid_project'],
    ['uploads/shoes/../a.jpg', 'invalid_label'],
    ['uploads/shoes/./a.jpg', 'invalid_label'],
    ['uploads/shoes/bo\u0007ots/a.jpg', 'invalid_label'],
    [`uploads/shoes/${'b'.repeat(65)}/a.jpg`, 'invalid_label'],
    ['uploads/shoes/boots /a.jpg', 'invalid_label'],
    ['uploads/shoes/boots/.DS_Store', 'hidden_file'],
    ['uploads/shoes/boots/a\nb.jpg', 'invalid_file_name'],
    [`uploads/shoes/boots/${'é'.repeat(200)}.jpg`, 'invalid_file_name'],
    ['photos/shoes/boots/a.jpg', 'not_an_upload'],
  ])('refuses %j with %s', (key, code) => {
    expect(refused(key)).toBe(code);
  });

  it('says a label is refused because it ends with a space, and what to rename it to', () => {
    expect(() => parseUploadKey('uploads/shoes/boots /a.jpg')).toThrow(
      "label 'boots ' ends with a space: rename the folder to 'boots'",
    );
  });

  it('decodes keys as S3 encodes them in events', () => {
    expect(decodeEventKey('uploads/shoes/red+boots/a%2Bb%20c.jpg')).toBe('uploads/shoes/red boots/a+b c.jpg');
    expect(decodeEventKey('uploads/p/caf%C3%A9/x.jpg')).toBe('uploads/p/café/x.jpg');
  });

  it('files refused keys under their project when it is readable', () => {
    expect(projectOf('uploads/shoes/a.jpg')).toBe('shoes');
    expect(projectOf('uploads/BAD/x/a.jpg')).toBeUndefined();
  });
});
