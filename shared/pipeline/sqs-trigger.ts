import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { RetrainTrigger } from './retrain-requests.js';

/**
 * Nudges the training function through SQS, delayed by the quiet window: when the message becomes visible, the
 * trainer checks whether a newer request arrived since (then a newer message is on its way and this one is
 * dropped), so a burst of uploads leads to one training.
 */
export function createSqsTrigger(options: {
  client: SQSClient;
  queueUrl: string;
  delaySeconds: number;
}): RetrainTrigger {
  return {
    async notify(project: string): Promise<void> {
      await options.client.send(
        new SendMessageCommand({
          QueueUrl: options.queueUrl,
          MessageBody: JSON.stringify({ project }),
          DelaySeconds: Math.min(900, Math.max(0, Math.round(options.delaySeconds))),
        }),
      );
    },
  };
}
