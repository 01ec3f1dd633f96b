import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { parseS3Notification, type UploadEvent } from '../../shared/dataset/s3-events.js';
import { createS3Store } from '../../shared/store/index.js';

// Real S3 -> SQS notifications from moto_server (which encodes keys and orders sequencers like S3), parsed
// the way the precompute function parses them. Proves the event shape, not just our own fixtures of it.
const endpoint = inject('motoEndpoint');
if (!endpoint) console.warn(`[S3 event notifications] skipped: ${inject('motoSkipReason')}`);

describe.skipIf(!endpoint)('S3 event notifications through SQS (moto_server)', () => {
  it('delivers created and removed events whose keys decode to the uploaded keys', async () => {
    const creds = { accessKeyId: 'test', secretAccessKey: 'test' };
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
    const sqs = new SQSClient({ endpoint, region: 'us-east-1', credentials: creds });
    const bucket = `hs-notify-${Math.random().toString(36).slice(2, 10)}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${bucket}-uploads` }));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              QueueArn: Attributes!.QueueArn!,
              Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
            },
          ],
        },
      }),
    );
    const store = createS3Store({ bucket, client: s3 });
    const keys = ['uploads/shop/red boots/a+b.jpg', 'uploads/shop/café/ü 1.png'];
    for (const k of keys) await store.put(k, new Uint8Array([1, 2, 3]));
    await store.put('features/not-an-upload', new Uint8Array([1])); // outside the filter: no event
    await store.delete(keys[0]!);

    const events: UploadEvent[] = [];
    for (let i = 0; i < 20 && events.length < 3; i++) {
      const r = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      for (const m of r.Messages ?? []) events.push(...parseS3Notification(m.Body!));
      if (r.Messages?.length) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl,
            Entries: r.Messages.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      }
    }
    expect(events.map((e) => [e.type, e.key]).sort()).toEqual(
      [
        ['created', keys[0]],
        ['created', keys[1]],
        ['removed', keys[0]],
      ].sort(),
    );
    expect(events.every((e) => e.sequencer.length > 0)).toBe(true);
    // Created events carry the size and the ETag (quoted, as the store reports it): enough to refuse an
    // oversized upload without reading it, and to record what was set aside.
    expect(events.find((e) => e.type === 'created' && e.key === keys[1])).toMatchObject({
      size: 3,
      etag: (await store.head(keys[1]!))!.etag,
    });
    expect(events.find((e) => e.type === 'removed')).not.toHaveProperty('etag');
  });
});
