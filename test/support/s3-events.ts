import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';

let seq = 0x1000;

/** Keys as S3 writes them into event notifications: URL-encoded, spaces as `+`. */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+');
}

export function nextSequencer(): string {
  seq += 1;
  return `00${seq.toString(16).toUpperCase().padStart(14, '0')}`;
}

/** An SQS record carrying an S3 event notification, shaped like the real ones. */
export function s3EventRecord(
  type: 'created' | 'removed',
  key: string,
  sequencer = nextSequencer(),
  bucket = 'headstart-test',
): SQSRecord {
  const body = {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: type === 'created' ? 'ObjectCreated:Put' : 'ObjectRemoved:Delete',
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'uploads',
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeEventKey(key), ...(type === 'created' ? { size: 1 } : {}), sequencer },
        },
      },
    ],
  };
  return rawSqsRecord(JSON.stringify(body));
}

let msg = 0;
export function rawSqsRecord(body: string): SQSRecord {
  msg += 1;
  return {
    messageId: `msg-${msg}`,
    receiptHandle: `rh-${msg}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:headstart-uploads',
    awsRegion: 'us-east-1',
  };
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

export const lambdaContext = {
  functionName: 'test',
  awsRequestId: 'req-1',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;
