import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { type JobsOptions, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ENGINE_CONFIG, type EngineConfig, SETTINGS, type Settings } from '@engine/config';
import { type InboundJobData, JOB, inboundJobId, inboundQueueName } from './names';
import { redisConnection } from './redis';

/** Default options of inbound jobs: the id dedupes (a re-enqueue of a queued message is a no-op). */
export const INBOUND_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 10000 },
  removeOnFail: false,
};

/** Producer side of the inbound partition queues (used by the gateway and the sweeper). */
@Injectable()
export class InboundQueues implements OnApplicationShutdown {
  private readonly logger = new Logger(InboundQueues.name);
  private readonly queues: Queue<InboundJobData>[] = [];
  /** Plain client for existence checks and pings (BullMQ's own clients are typed abstractly). */
  private readonly redis: Redis;
  readonly prefix: string;

  constructor(@Inject(SETTINGS) settings: Settings, @Inject(ENGINE_CONFIG) config: EngineConfig) {
    this.prefix = settings.QUEUE_PREFIX;
    const connection = redisConnection(settings.REDIS_URL, 'producer');
    this.redis = new Redis(settings.REDIS_URL, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: false,
    });
    this.redis.on('error', (err: Error) => this.logger.warn(`redis: ${err.message}`));
    for (let p = 0; p < config.engine.partitions; p++) {
      const q = new Queue<InboundJobData>(inboundQueueName(p), { connection, prefix: this.prefix });
      q.on('error', (err) => this.logger.warn(`queue ${q.name}: ${err.message}`));
      this.queues.push(q);
    }
  }

  get partitions(): number {
    return this.queues.length;
  }

  queue(partition: number): Queue<InboundJobData> {
    const q = this.queues[partition];
    if (!q) {
      throw new RangeError(`no inbound partition ${partition} (have ${this.queues.length})`);
    }
    return q;
  }

  /**
   * Enqueue messages, grouped per partition queue, each group in one pipelined addBulk.
   * Order within a partition follows the order of `items`.
   */
  async enqueue(items: readonly InboundJobData[]): Promise<void> {
    const groups = new Map<number, InboundJobData[]>();
    for (const it of items) {
      const g = groups.get(it.partition);
      if (g) {
        g.push(it);
      } else {
        groups.set(it.partition, [it]);
      }
    }
    await Promise.all(
      [...groups].map(([p, list]) =>
        this.queue(p).addBulk(
          list.map((data) => ({
            name: JOB.inboundMessage,
            data,
            opts: { ...INBOUND_JOB_OPTIONS, jobId: inboundJobId(data.feed, data.messageId) },
          })),
        ),
      ),
    );
  }

  /** For each item, whether a job with its id exists in Redis (any state). One round trip. */
  async jobsExist(items: readonly InboundJobData[]): Promise<boolean[]> {
    if (items.length === 0) {
      return [];
    }
    const pipeline = this.redis.pipeline();
    for (const it of items) {
      pipeline.exists(
        `${this.prefix}:${inboundQueueName(it.partition)}:${inboundJobId(it.feed, it.messageId)}`,
      );
    }
    const res = await pipeline.exec();
    if (!res) {
      throw new Error('redis pipeline returned no result');
    }
    return res.map(([err, n]) => {
      if (err) {
        throw err;
      }
      return n === 1;
    });
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
    this.redis.disconnect();
  }
}
