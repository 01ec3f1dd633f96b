import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseS3Notification } from '../../shared/dataset/s3-events.js';
import type { UploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import type { RetrainRequester } from '../../shared/pipeline/retrain-requests.js';

export interface PrecomputeHandlerDeps {
  extractor: () => Promise<UploadExtractor>;
  retrain: RetrainRequester;
  logger: Logger;
}

/**
 * SQS batch of S3 upload events in, partial batch failures out: a record fails alone (and is retried, then goes
 * to the dead-letter queue) while the others succeed. Records run concurrently so their images share backbone
 * batches. Retrain requests are coalesced to one per project per batch.
 */
export function createPrecomputeHandler(deps: PrecomputeHandlerDeps) {
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const extractor = await deps.extractor();
    const processor = new BatchProcessor(EventType.SQS);
    const handleRecord = async (record: SQSRecord) => {
      try {
        for (const e of parseS3Notification(record.body)) {
          const outcome = await extractor.handle(e);
          deps.logger.info('upload processed', { ...outcome, event: e.type, sequencer: e.sequencer });
        }
      } catch (err) {
        deps.logger.error('record failed; it will be retried', {
          messageId: record.messageId,
          error: err as Error,
        });
        throw err;
      }
    };
    const response = await processPartialResponse(event, handleRecord, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
    // If the nudge fails, fail the batch: redelivered events are idempotent and ask for the retrain again.
    const projects = await deps.retrain.flush();
    if (projects.length) deps.logger.info('retrain requested', { projects });
    return response;
  };
}
