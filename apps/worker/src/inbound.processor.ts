import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { parseMessage } from '@engine/hl7';
import { ENGINE_CONFIG, type EngineConfig, SETTINGS, type Settings } from '@engine/config';
import { MessageRepository } from '@engine/store';
import { type InboundJobData, JOB, inboundQueueName, redisConnection } from '@engine/queue';

/**
 * Consumes the inbound partition queues, one job at a time per partition (so one patient's
 * messages are handled in arrival order within this process). For now processing is: reload
 * the stored bytes, parse them, and mark the message `processed`; normalization into the
 * master patient index plugs in here.
 *
 * Workers are created at runtime (not with @Processor) because the number of partition queues
 * comes from the validated config.
 */
@Injectable()
export class InboundProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(InboundProcessor.name);
  private readonly workers: Worker<InboundJobData>[] = [];

  constructor(
    @Inject(SETTINGS) private readonly settings: Settings,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly messages: MessageRepository,
  ) {}

  onApplicationBootstrap(): void {
    const connection = redisConnection(this.settings.REDIS_URL, 'worker');
    for (let p = 0; p < this.config.engine.partitions; p++) {
      const worker = new Worker<InboundJobData>(inboundQueueName(p), (job) => this.process(job), {
        connection,
        prefix: this.settings.QUEUE_PREFIX,
        concurrency: 1,
      });
      worker.on('failed', (job, err) => {
        this.logger.warn(`message ${job?.data.messageId ?? '?'} failed: ${err.message}`);
        if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
          // Out of attempts: make it visible (status error) so an analyst can fix and replay it.
          this.messages
            .setStatus(job.data.messageId, 'error', {
              errorCode: 'PROCESSING_FAILED',
              errorReason: err.message,
            })
            .catch((e: unknown) =>
              this.logger.warn(
                `message ${job.data.messageId}: could not record the failure: ${(e as Error).message}`,
              ),
            );
        }
      });
      worker.on('error', (err) => this.logger.warn(`worker ${worker.name}: ${err.message}`));
      this.workers.push(worker);
    }
    this.logger.log(`consuming ${this.workers.length} inbound partition queue(s)`);
  }

  async process(job: Job<InboundJobData>): Promise<void> {
    if (job.name !== JOB.inboundMessage) {
      throw new UnrecoverableError(`unknown job name ${job.name}`);
    }
    const { messageId } = job.data;
    const row = await this.messages.findById(messageId);
    if (!row) {
      throw new UnrecoverableError(`message ${messageId} not found`);
    }
    if (row.status !== 'received') {
      return; // already handled (replayed job): idempotent
    }
    const feed = this.config.feeds.find((f) => f.id === row.feed);
    try {
      parseMessage(row.raw, { defaultCharset: feed?.defaultCharset });
    } catch (err) {
      await this.messages.setStatus(messageId, 'error', {
        errorCode: 'PARSE_ERROR',
        errorReason: (err as Error).message,
      });
      throw new UnrecoverableError(`message ${messageId} cannot be parsed`);
    }
    await this.messages.setStatus(messageId, 'processed', {});
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
