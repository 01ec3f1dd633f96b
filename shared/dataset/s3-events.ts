import { z } from 'zod';
import { errorKind, HeadstartError } from '../headstart-error.js';
import { decodeEventKey } from './upload-key.js';

/** One change to one upload, whatever delivered it (S3 via SQS in the cloud, the file-system store locally). */
export interface UploadEvent {
  type: 'created' | 'removed';
  key: string;
  sequencer: string;
  eventTime: string;
  /**
   * The object's ETag and size as the event saw them, when it carries them (S3 notifications do, quoted here as
   * stores report ETags). They let the extractor refuse an oversized upload without reading it, and record a
   * refusal with the ETag even when the store cannot read the key.
   */
  etag?: string;
  size?: number;
}

const s3Record = z.object({
  eventName: z.string(),
  eventTime: z.string(),
  s3: z.object({
    object: z.object({
      key: z.string(),
      sequencer: z.string().optional(),
      size: z.number().int().nonnegative().optional(),
      eTag: z.string().optional(),
    }),
  }),
});
const notification = z.union([
  z.object({ Records: z.array(s3Record) }),
  // S3 sends this once when a notification is configured; there is nothing to do for it.
  z.object({ Event: z.literal('s3:TestEvent') }),
]);

export class EventParseError extends errorKind(HeadstartError, {
  name: 'EventParseError',
  code: 'invalid_event',
}) {}

/** Parses the body of an SQS message carrying an S3 event notification. Keys are decoded as S3 encodes them. */
export function parseS3Notification(body: string): UploadEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new EventParseError('message body is not JSON', { cause });
  }
  const parsed = notification.safeParse(json);
  if (!parsed.success) {
    throw new EventParseError(`not an S3 event notification: ${parsed.error.issues[0]?.message}`, {
      cause: parsed.error,
    });
  }
  if (!('Records' in parsed.data)) return [];
  const out: UploadEvent[] = [];
  for (const r of parsed.data.Records) {
    const type = r.eventName.startsWith('ObjectCreated:')
      ? 'created'
      : r.eventName.startsWith('ObjectRemoved:')
        ? 'removed'
        : undefined;
    if (!type) continue;
    out.push({
      type,
      key: decodeEventKey(r.s3.object.key),
      // Without a sequencer (some S3-compatible servers), the event time orders events, less finely.
      sequencer:
        r.s3.object.sequencer ?? Date.parse(r.eventTime).toString(16).toUpperCase().padStart(16, '0'),
      eventTime: r.eventTime,
      ...(type === 'created' && r.s3.object.eTag ? { etag: quoted(r.s3.object.eTag) } : {}),
      ...(type === 'created' && r.s3.object.size !== undefined ? { size: r.s3.object.size } : {}),
    });
  }
  return out;
}

/** S3 notifications carry the ETag bare; listings, HEAD and GET quote it. */
function quoted(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}
