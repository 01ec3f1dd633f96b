import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import type { RetrainTrigger } from '../../shared/pipeline/retrain-requests.js';
import type { TrainOutcome } from '../../shared/pipeline/train-project.js';

export interface TrainHandlerDeps {
  trainer: () => Promise<{ run(project: string): Promise<TrainOutcome> }>;
  /** Re-nudges a project whose training is busy elsewhere, so its request is not lost. */
  trigger: RetrainTrigger;
  logger: Logger;
}

const nudgeSchema = z.object({ project: z.string().min(1) });

/**
 * Training nudges from SQS. A nudge that comes too early is dropped (the latest request sent its own, still
 * delayed); one that finds a training running is sent again with the quiet-window delay; a failed training fails
 * its record, so SQS retries it and finally parks it in the dead-letter queue.
 */
export function createTrainHandler(deps: TrainHandlerDeps) {
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const trainer = await deps.trainer();
    const processor = new BatchProcessor(EventType.SQS);
    const handleRecord = async (record: SQSRecord) => {
      const { project } = nudgeSchema.parse(JSON.parse(record.body));
      const outcome = await trainer.run(project);
      deps.logger.info('training nudge handled', { ...outcome });
      if (outcome.status === 'busy') await deps.trigger.notify(project);
    };
    return processPartialResponse(event, handleRecord, processor, {
      context,
      throwOnFullBatchFailure: false,
      // One training at a time per instance: they are CPU-bound and each may use most of the memory.
      processInParallel: false,
    });
  };
}
