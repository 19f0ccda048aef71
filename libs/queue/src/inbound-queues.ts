import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, type JobsOptions, Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ENGINE_CONFIG, type EngineConfig, SETTINGS, type Settings } from '@engine/config';
import { type InboundJobData, JOB, inboundJobId, inboundQueueName } from './names';
import { redisConnection } from './redis';

/** How long enqueueSoon() gathers items before writing them to Redis. */
export const ENQUEUE_COALESCE_MS = 20;

/**
 * The wake-up jobs for a run of committed messages: per partition, one job, for the message
 * with the greatest id (ids are UUIDv7, so the newest). An inbound job means "this
 * partition's messages up to this id are committed": the worker drains every pending message
 * of the partition up to it, in id order, so the older messages need no job of their own
 * (ADR 0010). BullMQ runs a Lua script per job on both sides; one per partition and flush
 * instead of one per message is what keeps the gateway near the minimal server.
 */
export function newestPerPartition(items: readonly InboundJobData[]): InboundJobData[] {
  const newest = new Map<number, InboundJobData>();
  for (const it of items) {
    const seen = newest.get(it.partition);
    if (seen === undefined || it.messageId > seen.messageId) {
      newest.set(it.partition, it);
    }
  }
  return [...newest.values()];
}

/**
 * Jobs of each list read by newestLiveJobs: the newest waiting ones (jobs are pushed on the
 * left) and the latest delayed ones.
 */
const LIVE_JOBS_READ = 50;

const UUID_TAIL = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The message id of an inbound job id (`<feed>-<message id>`), if it has that shape. */
function messageIdOfJob(jobId: string): string | undefined {
  return UUID_TAIL.exec(jobId)?.[0];
}

/** Default options of inbound jobs: the id dedupes (a re-enqueue of a queued message is a no-op). */
export const INBOUND_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 10000 },
  removeOnFail: false,
};

/**
 * Producer side of the inbound partition queues (used by the gateway and the sweeper).
 *
 * All partition queues share one Redis connection, and an enqueue that touches several
 * partitions is sent as one pipeline: on loopback every socket write is a syscall that also
 * runs the receiver's TCP processing, and each BullMQ addBulk builds a pipeline of its own
 * (measured in docs/benchmarks.md).
 */
@Injectable()
export class InboundQueues implements OnApplicationShutdown {
  private readonly logger = new Logger(InboundQueues.name);
  private readonly queues: Queue<InboundJobData>[] = [];
  /** Job options with the configured attempts and backoff (`worker.attempts`, `backoffMs`). */
  private readonly jobOptions: JobsOptions;
  private readonly redis: Redis;
  readonly prefix: string;
  /** Coalescing of enqueueSoon(): items waiting for the flush after the one in flight. */
  private pending: InboundJobData[] = [];
  private flushing = false;
  private readonly flushTimeoutMs = 10_000;

  constructor(@Inject(SETTINGS) settings: Settings, @Inject(ENGINE_CONFIG) config: EngineConfig) {
    this.prefix = settings.QUEUE_PREFIX;
    this.jobOptions = {
      ...INBOUND_JOB_OPTIONS,
      attempts: config.worker.attempts,
      backoff: { type: 'exponential', delay: config.worker.backoffMs },
    };
    const connection = redisConnection(settings.REDIS_URL, 'producer');
    this.redis = new Redis({ ...connection, enableOfflineQueue: true } as RedisOptions);
    this.redis.on('error', (err: Error) => this.logger.warn(`redis: ${err.message}`));
    for (let p = 0; p < config.engine.partitions; p++) {
      const q = new Queue<InboundJobData>(inboundQueueName(p), {
        connection: this.redis,
        prefix: this.prefix,
      });
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
   * Enqueue messages on their partition queues, all in ONE Redis pipeline (one socket write),
   * as BullMQ's own addBulk does for one queue. Order within a partition follows `items`.
   * Adding a job whose id already exists is a no-op (BullMQ dedupes custom job ids).
   */
  async enqueue(items: readonly InboundJobData[]): Promise<void> {
    if (items.length === 0) {
      return;
    }
    // BullMQ's client wrapper (scripts loaded) of the connection every partition queue shares.
    const client = await this.queues[0].client;
    const pipeline = client.pipeline();
    for (const data of items) {
      const jobId = inboundJobId(data.feed, data.messageId);
      const job = new Job<InboundJobData>(
        this.queue(data.partition),
        JOB.inboundMessage,
        data,
        { ...this.jobOptions, jobId },
        jobId,
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
   * Wake the workers of these committed messages, in the background: items gather for
   * ENQUEUE_COALESCE_MS (and while one enqueue is in flight), then one wake-up job per
   * partition goes out for the newest of them (`newestPerPartition`). Failures are reported to
   * `onError` with the number of messages concerned (the sweeper wakes the partitions of
   * committed messages that no job covers, so nothing is lost).
   */
  enqueueSoon(
    items: readonly InboundJobData[],
    onError: (err: Error, count: number) => void,
  ): void {
    for (const it of items) {
      this.pending.push(it);
    }
    if (!this.flushing) {
      this.flushing = true;
      this.scheduleFlush(onError);
    }
  }

  /**
   * The next flush, ENQUEUE_COALESCE_MS from now: the commits of that span share one pipeline
   * and one job per partition. The delay is kept between consecutive flushes too (flushing as
   * soon as the previous one answered would send a few messages, and nearly as many jobs, per
   * Redis round trip). It adds nothing to the ACK path.
   */
  private scheduleFlush(onError: (err: Error, count: number) => void): void {
    setTimeout(() => void this.flush(onError), ENQUEUE_COALESCE_MS);
  }

  private async flush(onError: (err: Error, count: number) => void): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.enqueue(newestPerPartition(batch)),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer from Redis within ${this.flushTimeoutMs} ms`)),
            this.flushTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      onError(err as Error, batch.length);
    } finally {
      clearTimeout(timer);
    }
    if (this.pending.length > 0) {
      this.scheduleFlush(onError);
    } else {
      this.flushing = false;
    }
  }

  /**
   * For each item, the state of its job: 'missing' (no job: enqueue it), 'failed' (the job used
   * up its attempts while the message is still unprocessed) or 'present'. One round trip.
   */
  async jobStates(
    items: readonly InboundJobData[],
  ): Promise<Array<'missing' | 'failed' | 'present'>> {
    if (items.length === 0) {
      return [];
    }
    const pipeline = this.redis.pipeline();
    for (const it of items) {
      const queueKey = `${this.prefix}:${inboundQueueName(it.partition)}`;
      const jobId = inboundJobId(it.feed, it.messageId);
      pipeline.exists(`${queueKey}:${jobId}`);
      pipeline.zscore(`${queueKey}:failed`, jobId);
    }
    const res = await pipeline.exec();
    if (!res) {
      throw new Error('redis pipeline returned no result');
    }
    for (const [err] of res) {
      if (err) {
        throw err;
      }
    }
    return items.map((_, i) => {
      if (res[2 * i][1] !== 1) {
        return 'missing';
      }
      return res[2 * i + 1][1] === null ? 'present' : 'failed';
    });
  }

  /**
   * Per partition, the greatest message id among its live jobs, i.e. the newest message a job
   * still to run covers (ADR 0010): the last jobs added to `wait` (or `paused`), every `active`
   * job and the jobs delayed last. Absent when the partition has none. One round trip.
   */
  async newestLiveJobs(partitions: readonly number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    if (partitions.length === 0) {
      return out;
    }
    const pipeline = this.redis.pipeline();
    for (const p of partitions) {
      const key = `${this.prefix}:${inboundQueueName(p)}`;
      pipeline.lrange(`${key}:wait`, 0, LIVE_JOBS_READ - 1);
      pipeline.lrange(`${key}:paused`, 0, LIVE_JOBS_READ - 1);
      pipeline.lrange(`${key}:active`, 0, -1);
      pipeline.zrange(`${key}:delayed`, -LIVE_JOBS_READ, -1);
    }
    const res = await pipeline.exec();
    if (!res) {
      throw new Error('redis pipeline returned no result');
    }
    partitions.forEach((p, i) => {
      const ids: string[] = [];
      for (const [err, value] of res.slice(4 * i, 4 * i + 4)) {
        if (err) {
          throw err;
        }
        if (typeof value === 'string') {
          ids.push(value);
        } else if (Array.isArray(value)) {
          ids.push(...(value as string[]));
        }
      }
      for (const jobId of ids) {
        const messageId = messageIdOfJob(jobId);
        const seen = out.get(p);
        if (messageId !== undefined && (seen === undefined || messageId > seen)) {
          out.set(p, messageId);
        }
      }
    });
    return out;
  }

  /** For each item, whether a job with its id exists in Redis (any state). */
  async jobsExist(items: readonly InboundJobData[]): Promise<boolean[]> {
    return (await this.jobStates(items)).map((s) => s !== 'missing');
  }

  /** Move failed jobs back to waiting (a fresh set of attempts). */
  async retryFailed(items: readonly InboundJobData[]): Promise<void> {
    for (const it of items) {
      const job = await this.queue(it.partition).getJob(inboundJobId(it.feed, it.messageId));
      if (job && (await job.isFailed())) {
        await job.retry('failed');
      }
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async onApplicationShutdown(): Promise<void> {
    // Let the last coalesced enqueue go out (what does not, the sweeper re-enqueues).
    const end = Date.now() + 2000;
    while ((this.flushing || this.pending.length > 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(this.queues.map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
