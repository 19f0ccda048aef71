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
 * Redis holds work, the database holds truth: at start and every interval, wake every partition
 * that has committed messages (status `received`) no job covers (Redis flushed or restarted, an
 * enqueue that failed after the ACK, a job that used up its attempts).
 *
 * An inbound job covers every message of its partition up to its id (ADR 0010), so per
 * partition it is enough to look at the newest such message: a live job (waiting, active or
 * delayed) for it or a newer one → covered; else no job under its id → enqueue one (it covers
 * the older ones too); its job failed for good → retry it. Enqueueing is idempotent (the job id
 * is derived from the message id).
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

  /**
   * Wake the partitions whose committed messages older than `graceMs` no job covers. Returns
   * how many such messages the jobs it enqueued or retried cover.
   */
  sweep(graceMs: number): Promise<number> {
    // One sweep at a time in this process.
    this.running ??= this.doSweep(graceMs).finally(() => (this.running = undefined));
    return this.running;
  }

  private async doSweep(graceMs: number): Promise<number> {
    const olderThan = new Date(Date.now() - graceMs);
    let after: { receivedAt: Date; id: string } | undefined;
    /** Per partition: the stale messages seen, and the newest of them. */
    const stale = new Map<number, { count: number; newest: InboundJobData }>();
    for (;;) {
      const rows = await this.messages.findUnqueued({ olderThan, after, limit: PAGE });
      for (const r of rows) {
        const item: InboundJobData = {
          messageId: r.id,
          feed: r.feed,
          partition: r.partition % this.queues.partitions,
        };
        const seen = stale.get(item.partition);
        if (seen === undefined) {
          stale.set(item.partition, { count: 1, newest: item });
        } else {
          seen.count++;
          if (item.messageId > seen.newest.messageId) {
            seen.newest = item;
          }
        }
      }
      if (rows.length < PAGE) {
        break;
      }
      const last = rows[rows.length - 1];
      after = { receivedAt: last.receivedAt, id: last.id };
    }
    // A partition whose live jobs reach its newest stale message is covered: a worker that is
    // behind, or a held partition, is not lost work (the newest stale message is then seldom
    // the one its flush made a job for).
    const live = await this.queues.newestLiveJobs([...stale.keys()]);
    const partitions = [...stale.entries()]
      .filter(([p, s]) => (live.get(p) ?? '') < s.newest.messageId)
      .map(([, s]) => s);
    const items = partitions.map((p) => p.newest);
    const states = await this.queues.jobStates(items);
    const missing = items.filter((_, i) => states[i] === 'missing');
    if (missing.length > 0) {
      await this.queues.enqueue(missing);
    }
    // A job that used up its attempts while its message is still `received` (the worker could
    // not even record the failure, e.g. the database was down): give it another round.
    const failed = items.filter((_, i) => states[i] === 'failed');
    if (failed.length > 0) {
      await this.queues.retryFailed(failed);
    }
    const woken = partitions.filter((_, i) => states[i] !== 'present');
    const covered = woken.reduce((n, p) => n + p.count, 0);
    if (covered > 0) {
      gatewayMetrics.swept.inc(covered);
      this.logger.warn(
        `woke ${woken.length} partition(s) for ${covered} committed message(s) that no job covered`,
      );
    }
    return covered;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
    }
    await this.running?.catch(() => undefined);
  }
}
