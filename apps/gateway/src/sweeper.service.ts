import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ENGINE_CONFIG, type EngineConfig } from '@engine/config';
import { MessageRepository } from '@engine/store';
import { InboundQueues, type InboundJobData } from '@engine/queue';
import { gatewayMetrics } from './metrics';

const PAGE = 1000;

/**
 * Redis holds work, the database holds truth: at start and every interval, re-enqueue every
 * committed message (status `received`) whose job is missing from Redis (flushed, restarted,
 * or an enqueue that failed after the ACK). Re-enqueueing is idempotent (job id = message id).
 */
@Injectable()
export class SweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SweeperService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly messages: MessageRepository,
    private readonly queues: InboundQueues,
  ) {}

  onApplicationBootstrap(): void {
    const { intervalSeconds } = this.config.engine.sweeper;
    this.trigger();
    this.timer = setInterval(() => this.trigger(), intervalSeconds * 1000);
    this.timer.unref();
  }

  private trigger(): void {
    this.sweep(this.config.engine.sweeper.graceSeconds * 1000).catch((err: unknown) =>
      this.logger.warn(`sweep failed: ${(err as Error).message}`),
    );
  }

  /** Re-enqueue committed messages older than `graceMs` that have no job. Returns how many. */
  sweep(graceMs: number): Promise<number> {
    // One sweep at a time in this process.
    this.running ??= this.doSweep(graceMs).finally(() => (this.running = undefined));
    return this.running;
  }

  private async doSweep(graceMs: number): Promise<number> {
    const olderThan = new Date(Date.now() - graceMs);
    let after: { receivedAt: Date; id: string } | undefined;
    let requeued = 0;
    for (;;) {
      const rows = await this.messages.findUnqueued({ olderThan, after, limit: PAGE });
      if (rows.length === 0) {
        break;
      }
      const items: InboundJobData[] = rows.map((r) => ({
        messageId: r.id,
        feed: r.feed,
        partition: r.partition % this.queues.partitions,
      }));
      const states = await this.queues.jobStates(items);
      const missing = items.filter((_, i) => states[i] === 'missing');
      if (missing.length > 0) {
        await this.queues.enqueue(missing);
        requeued += missing.length;
      }
      // A job that used up its attempts while its message is still `received` (the worker could
      // not even record the failure, e.g. the database was down): give it another round.
      const failed = items.filter((_, i) => states[i] === 'failed');
      if (failed.length > 0) {
        await this.queues.retryFailed(failed);
        requeued += failed.length;
      }
      const last = rows[rows.length - 1];
      after = { receivedAt: last.receivedAt, id: last.id };
      if (rows.length < PAGE) {
        break;
      }
    }
    if (requeued > 0) {
      gatewayMetrics.swept.inc(requeued);
      this.logger.warn(`re-enqueued ${requeued} committed message(s) that had no job`);
    }
    return requeued;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
    }
    await this.running?.catch(() => undefined);
  }
}
