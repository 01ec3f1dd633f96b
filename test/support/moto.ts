import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Store, type ObjectStore } from '../../shared/store/index.js';

export const motoCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export function motoS3Client(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: motoCredentials });
}

/** A fresh bucket on moto_server, for one test: its name, a client, and a store over it. */
export async function motoBucket(
  endpoint: string,
  prefix = 'hs',
): Promise<{ bucket: string; client: S3Client; store: ObjectStore }> {
  const bucket = `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
  const client = motoS3Client(endpoint);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return { bucket, client, store: createS3Store({ bucket, client }) };
}
