import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ENGINE_CONFIG, type EngineConfig, SETTINGS, type Settings } from '@engine/config';
import { DELIVERY_JOB, type DeliveryJobData, deliveryQueueName } from './names';
import { redisConnection } from './redis';

export interface LaneRef {
  destination: string;
  lane: number;
}

/** How long wakeSoon() gathers lanes before writing them to Redis. */
const WAKE_COALESCE_MS = 5;

/**
 * Producer side of the per-destination delivery queues (one BullMQ queue per destination).
 * A job only says "this destination has new work": the rows and their order live in the
 * `delivery` table, so a lost, duplicated or late job never loses or reorders a delivery (the
 * delivering process also looks at the table on its own). Wake-ups of the same few
 * milliseconds are coalesced into one job per destination.
 */
@Injectable()
export class DeliveryQueues implements OnApplicationShutdown {
  private readonly logger = new Logger(DeliveryQueues.name);
  private readonly queues = new Map<string, Queue<DeliveryJobData>>();
  private readonly redis: Redis;
  private pending = new Map<string, LaneRef>();
  private flushing = false;

  constructor(@Inject(SETTINGS) settings: Settings, @Inject(ENGINE_CONFIG) config: EngineConfig) {
    const connection = redisConnection(settings.REDIS_URL, 'producer');
    this.redis = new Redis({ ...connection, enableOfflineQueue: true } as RedisOptions);
    this.redis.on('error', (err: Error) => this.logger.warn(`redis: ${err.message}`));
    for (const d of config.destinations) {
      const q = new Queue<DeliveryJobData>(deliveryQueueName(d.id), {
        connection: this.redis,
        prefix: settings.QUEUE_PREFIX,
      });
      q.on('error', (err) => this.logger.warn(`queue ${q.name}: ${err.message}`));
      this.queues.set(d.id, q);
    }
  }

  get destinations(): string[] {
    return [...this.queues.keys()];
  }

  queue(destination: string): Queue<DeliveryJobData> {
    const q = this.queues.get(destination);
    if (!q) {
      throw new RangeError(`no destination "${destination}"`);
    }
    return q;
  }

  /** Adds one wake-up job per destination named (optionally delayed), in one Redis pipeline. */
  async wake(lanes: readonly LaneRef[], delayMs = 0): Promise<void> {
    const destinations = [...new Set(lanes.map((l) => l.destination))].filter((d) =>
      this.queues.has(d),
    );
    if (destinations.length === 0) {
      return;
    }
    const client = await this.queue(destinations[0]).client;
    const pipeline = client.pipeline();
    for (const d of destinations) {
      const job = new Job<DeliveryJobData>(
        this.queue(d),
        DELIVERY_JOB,
        {},
        {
          delay: Math.max(0, Math.round(delayMs)),
          removeOnComplete: true,
          removeOnFail: { age: 3600, count: 1000 },
        },
      );
      void job.addJob(pipeline, { parentDependenciesKey: '' });
    }
    const results = await pipeline.exec();
    for (const [err] of results ?? []) {
      if (err) {
        throw err;
      }
    }
  }

  /**
   * Wakes destinations in the background, coalescing those of the next few milliseconds into
   * one pipeline. A failure is only logged: the delivering process polls the table anyway.
   */
  wakeSoon(lanes: readonly LaneRef[]): void {
    for (const l of lanes) {
      this.pending.set(l.destination, l);
    }
    if (!this.flushing && this.pending.size > 0) {
      this.flushing = true;
      setTimeout(() => void this.flush(), WAKE_COALESCE_MS);
    }
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.wake(batch);
      } catch (err) {
        this.logger.warn(
          `waking ${batch.length} destination(s) failed (deliveries wait for the next poll): ${(err as Error).message}`,
        );
      }
    }
    this.flushing = false;
  }

  async pause(destination: string): Promise<void> {
    await this.queue(destination).pause();
  }

  async resume(destination: string): Promise<void> {
    await this.queue(destination).resume();
  }

  isPaused(destination: string): Promise<boolean> {
    return this.queue(destination).isPaused();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }
}
