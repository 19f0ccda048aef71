import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type Job, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ENGINE_CONFIG, type EngineConfig, SETTINGS, type Settings } from '@engine/config';
import { type InboundJobData, inboundQueueName, redisConnection } from '@engine/queue';
import { PartitionLeases } from './partition-leases';
import { type DrainStats, PipelineService } from './pipeline.service';
import { pipelineMetrics } from './metrics';

interface Consumer {
  partition: number;
  worker: Worker<InboundJobData>;
  stopping: boolean;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a held or blocked partition waits before it looks again. */
const HOLD_POLL_MS = 2000;
const BLOCKED_RETRY_MS = 200;
/** A blocked drain is retried in place this many times, this far apart, before giving up. */
const BLOCKED_POLLS = 50;
const BLOCKED_POLL_MS = 20;

/**
 * The pipeline worker. It leases inbound partitions (one worker process per partition at a
 * time, spread over every live worker) and consumes each leased partition's BullMQ queue by
 * hand: it takes the waiting jobs (up to the batch size), applies the partition's pending
 * messages up to the newest of them in arrival order (`PipelineService.drain`), and completes
 * the jobs. A database outage fails the jobs, and BullMQ retries them with exponential backoff.
 */
@Injectable()
export class InboundProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(InboundProcessor.name);
  private readonly consumers = new Map<number, Consumer>();
  private redis?: Redis;
  /** The inbound partition workers' shared command connection (auto-pipelined). */
  private jobsRedis?: Redis;
  private leases?: PartitionLeases;
  private readonly metrics = pipelineMetrics();

  constructor(
    @Inject(SETTINGS) private readonly settings: Settings,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly pipeline: PipelineService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.redis = new Redis({
      ...(redisConnection(this.settings.REDIS_URL, 'worker') as RedisOptions),
      connectionName: 'engine-worker-leases',
    });
    this.redis.on('error', (err: Error) => this.logger.warn(`lease connection: ${err.message}`));
    this.jobsRedis = new Redis({
      ...(redisConnection(this.settings.REDIS_URL, 'worker') as RedisOptions),
      enableAutoPipelining: true,
      connectionName: 'engine-worker-inbound',
    });
    this.jobsRedis.on('error', (err: Error) => this.logger.warn(`job connection: ${err.message}`));
    this.leases = new PartitionLeases({
      redis: this.redis,
      prefix: this.settings.QUEUE_PREFIX,
      partitions: this.config.engine.partitions,
      leaseMs: this.config.worker.leaseSeconds * 1000,
      onAcquired: (p) => this.startConsumer(p),
      onReleased: (p, lost) => this.stopConsumer(p, lost),
      onError: (err) => this.logger.warn(`partition leases: ${err.message}`),
    });
    await this.leases.start();
    this.logger.log(
      `worker ${this.leases.workerId} consuming partitions [${this.leases.partitions.join(',')}]`,
    );
  }

  /** Partitions this process consumes now. */
  get partitions(): number[] {
    return this.leases?.partitions ?? [];
  }

  private startConsumer(partition: number): void {
    const worker = new Worker<InboundJobData>(inboundQueueName(partition), null, {
      // Shared by every partition of this process (each worker duplicates it for its blocking
      // fetch): the commands of all partitions issued in one tick leave in one socket write.
      connection: this.jobsRedis!,
      prefix: this.settings.QUEUE_PREFIX,
      autorun: false,
      // Blocking fetch: wake up at least every second to notice a lost lease.
      drainDelay: 1,
      // Jobs of a worker that died go back to waiting about as fast as its partitions move.
      lockDuration: Math.max(4000, this.config.worker.leaseSeconds * 2000),
      stalledInterval: Math.max(2000, this.config.worker.leaseSeconds * 1000),
    });
    worker.on('error', (err) => this.logger.warn(`partition ${partition}: ${err.message}`));
    const consumer: Consumer = { partition, worker, stopping: false, done: Promise.resolve() };
    consumer.done = this.consume(consumer).catch((err: Error) =>
      this.logger.error(`partition ${partition} consumer stopped: ${err.message}`),
    );
    this.consumers.set(partition, consumer);
    this.metrics.partitionsOwned.set(this.consumers.size);
  }

  private async stopConsumer(partition: number, lost: boolean): Promise<void> {
    const c = this.consumers.get(partition);
    if (!c) {
      return;
    }
    if (lost) {
      this.logger.warn(`partition ${partition}: lease lost, stopping`);
    }
    c.stopping = true;
    await c.done;
    await c.worker.close().catch(() => undefined);
    this.consumers.delete(partition);
    this.metrics.partitionsOwned.set(this.consumers.size);
  }

  private async consume(c: Consumer): Promise<void> {
    const token = randomUUID();
    const failurePolicy = this.config.worker.failurePolicy;
    await c.worker.startStalledCheckTimer();
    while (!c.stopping) {
      try {
        if (failurePolicy === 'hold' && (await this.pipeline.isHeld(c.partition))) {
          this.metrics.held.set({ partition: String(c.partition) }, 1);
          await sleep(HOLD_POLL_MS);
          continue;
        }
        this.metrics.held.set({ partition: String(c.partition) }, 0);
        const first = await c.worker.getNextJob(token, { block: true });
        if (!first) {
          continue;
        }
        const jobs = [first, ...(await this.fetchWaiting(c.worker, token))];
        await this.handle(c.partition, jobs, token);
      } catch (err) {
        if (c.stopping) {
          break;
        }
        this.logger.warn(`partition ${c.partition}: ${(err as Error).message}`);
        await sleep(1000);
      }
    }
  }

  /**
   * The jobs waiting behind the first, up to the batch size, taken in one round trip: their
   * count first, then one moveToActive each, sent together (the connection auto-pipelines).
   */
  private async fetchWaiting(
    worker: Worker<InboundJobData>,
    token: string,
  ): Promise<Job<InboundJobData>[]> {
    const client = await worker.client;
    const waiting = await client.llen(worker.keys.wait);
    const n = Math.min(waiting, this.config.worker.batchSize - 1);
    const next = await Promise.all(
      Array.from({ length: n }, () => worker.getNextJob(token, { block: false })),
    );
    return next.filter((j): j is Job<InboundJobData> => j !== undefined);
  }

  private async handle(
    partition: number,
    jobs: Job<InboundJobData>[],
    token: string,
  ): Promise<void> {
    const upTo = jobs.reduce(
      (max, j) => (j.data.messageId > max ? j.data.messageId : max),
      jobs[0].data.messageId,
    );
    const stats: DrainStats = { processed: 0, ignored: 0, errors: 0, events: 0 };
    const started = process.hrtime.bigint();
    let result;
    try {
      result = await this.pipeline.drain(partition, upTo, stats);
      // Waiting for another partition (a merge naming a patient there) is usually a matter of
      // milliseconds: keep the jobs and look again rather than cycling them through `delayed`.
      for (let i = 0; result === 'blocked' && i < BLOCKED_POLLS; i++) {
        await sleep(BLOCKED_POLL_MS);
        result = await this.pipeline.drain(partition, upTo, stats);
      }
    } catch (err) {
      // Transient (database unreachable, lost races): BullMQ retries with backoff.
      this.logger.warn(
        `partition ${partition}: ${jobs.length} job(s) failed, will retry: ${(err as Error).message}`,
      );
      await Promise.all(jobs.map((j) => j.moveToFailed(err as Error, token, false)));
      return;
    } finally {
      this.metrics.record(stats, Number(process.hrtime.bigint() - started) / 1e9);
    }
    if (result === 'done') {
      await Promise.all(jobs.map((j) => j.moveToCompleted(null, token, false)));
      return;
    }
    // Held or waiting for another partition: look again later (the messages stay pending).
    const later = Date.now() + (result === 'held' ? HOLD_POLL_MS : BLOCKED_RETRY_MS);
    await Promise.all(jobs.map((j) => j.moveToDelayed(later, token)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.leases?.stop();
    await Promise.all([...this.consumers.keys()].map((p) => this.stopConsumer(p, false)));
    await this.redis?.quit().catch(() => undefined);
    await this.jobsRedis?.quit().catch(() => undefined);
  }
}
