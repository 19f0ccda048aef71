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
import { DataSource } from 'typeorm';
import {
  type DestinationConfig,
  ENGINE_CONFIG,
  type EngineConfig,
  SETTINGS,
  type Settings,
} from '@engine/config';
import {
  type DeliveryJobData,
  DeliveryQueues,
  deliveryQueueName,
  redisConnection,
} from '@engine/queue';
import { type Delivery, DeliveryStore } from '@engine/store';
import {
  createSender,
  render,
  type RenderOptions,
  retriesExhausted,
  retryDelayMs,
  type Sender,
  type SourceMessage,
} from '@engine/routing';
import { deliveryMetrics } from './metrics';

/** Rows read from a lane at a time. */
const LANE_CHUNK = 25;
/** Lane lock time-to-live (at least 3 send timeouts); renewed after every delivery. */
const MIN_LOCK_MS = 30_000;
/** How often the sweeper wakes lanes with due deliveries (lost jobs, Redis flushed). */
export const DELIVERY_SWEEP_MS = 2000;

const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

interface Destination {
  config: DestinationConfig;
  sender: Sender;
  worker?: Worker<DeliveryJobData>;
}

/**
 * Delivers the `delivery` rows (written by the pipeline in the same transaction as the MPI
 * changes) to their destinations. One BullMQ queue per destination; a job names a lane. The
 * lane's rows go out one at a time in id order under a Redis lock (one patient's updates in
 * order, whichever worker process takes the job), different lanes in parallel up to the
 * destination's `concurrency`. A transient failure blocks the lane (ordering `patient`) until
 * the retry, so nothing overtakes it; a permanent one dead-letters the row and the lane goes on.
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly store: DeliveryStore;
  private readonly destinations = new Map<string, Destination>();
  private readonly renderOptions: Omit<RenderOptions, 'addEuid' | 'rules'>;
  private readonly routes: Map<string, EngineConfig['routes'][number]>;
  private redis?: Redis;
  private sweepTimer?: NodeJS.Timeout;
  private stopping = false;
  private readonly pausedCache = new Map<string, { paused: boolean; at: number }>();
  private readonly metrics = deliveryMetrics();

  constructor(
    dataSource: DataSource,
    @Inject(SETTINGS) private readonly settings: Settings,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly queues: DeliveryQueues,
  ) {
    this.store = new DeliveryStore(dataSource);
    this.renderOptions = {
      euidAuthority: config.mpi.euidAuthority,
      tables: config.tables,
      application: 'HL7-MPI-ENGINE',
      facility: config.mpi.euidAuthority,
    };
    this.routes = new Map(config.routes.map((r) => [r.id, r]));
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.destinations.length === 0) {
      return;
    }
    this.redis = new Redis({
      ...(redisConnection(this.settings.REDIS_URL, 'worker') as RedisOptions),
      connectionName: 'engine-delivery-locks',
    });
    this.redis.on('error', (err: Error) => this.logger.warn(`lock connection: ${err.message}`));
    const states = await this.store.destinationStates();
    for (const config of this.config.destinations) {
      const dest: Destination = { config, sender: createSender(config) };
      this.destinations.set(config.id, dest);
      // A pause or resume through the API outlives restarts; else the config decides.
      const paused = states.get(config.id)?.paused ?? config.paused;
      if (paused !== (await this.queues.isPaused(config.id))) {
        await (paused ? this.queues.pause(config.id) : this.queues.resume(config.id));
      }
      const worker = new Worker<DeliveryJobData>(
        deliveryQueueName(config.id),
        (job: Job<DeliveryJobData>) => this.drainLane(dest, job.data.lane),
        {
          connection: redisConnection(this.settings.REDIS_URL, 'worker'),
          prefix: this.settings.QUEUE_PREFIX,
          concurrency: config.concurrency,
          autorun: true,
        },
      );
      worker.on('error', (err) => this.logger.warn(`delivery worker ${config.id}: ${err.message}`));
      worker.on('failed', (_job, err) =>
        this.logger.warn(`delivery lane of ${config.id} failed (retried): ${err.message}`),
      );
      dest.worker = worker;
    }
    this.logger.log(
      `delivering to ${this.config.destinations.map((d) => `${d.id} (${d.type}, ${d.format})`).join(', ')}`,
    );
    void this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), DELIVERY_SWEEP_MS);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweepTimer);
    await Promise.all([...this.destinations.values()].map(async (d) => d.worker?.close()));
    await Promise.all([...this.destinations.values()].map((d) => d.sender.close()));
    this.redis?.disconnect();
  }

  /** Wakes every lane whose first pending delivery is due (covers lost or flushed jobs). */
  async sweep(): Promise<void> {
    try {
      const now = Date.now();
      const due = (await this.store.pendingLanes()).filter(
        (l) => l.dueAt.getTime() <= now && this.destinations.has(l.destination),
      );
      const awake: typeof due = [];
      for (const l of due) {
        if (!(await this.isPaused(l.destination))) {
          awake.push(l);
        }
      }
      this.metrics.pendingLanes.set(due.length);
      if (awake.length > 0) {
        await this.queues.wake(awake);
      }
    } catch (err) {
      this.logger.warn(`delivery sweep failed: ${(err as Error).message}`);
    }
  }

  private async isPaused(destination: string): Promise<boolean> {
    const cached = this.pausedCache.get(destination);
    if (cached && Date.now() - cached.at < 500) {
      return cached.paused;
    }
    const paused = await this.queues.isPaused(destination);
    this.pausedCache.set(destination, { paused, at: Date.now() });
    return paused;
  }

  /**
   * Delivers a lane's pending rows in order while it holds the lane's lock. A job that finds
   * the lock taken returns at once: the holder looks again after releasing it, so a wake-up is
   * never lost.
   */
  async drainLane(dest: Destination, lane: number): Promise<void> {
    const redis = this.redis!;
    const key = `${this.settings.QUEUE_PREFIX}:delivery-lock:${dest.config.id}:${lane}`;
    const token = randomUUID();
    const lockMs = Math.max(MIN_LOCK_MS, 3 * dest.config.timeoutMs);
    if ((await redis.set(key, token, 'PX', lockMs, 'NX')) !== 'OK') {
      return;
    }
    let waitUntil: Date | null = null;
    try {
      waitUntil = await this.deliverLane(dest, lane, async () => {
        await redis.pexpire(key, lockMs);
      });
    } finally {
      await redis.eval(RELEASE_LOCK, 1, key, token).catch(() => undefined);
    }
    if (waitUntil) {
      await this.queues.wake(
        [{ destination: dest.config.id, lane }],
        waitUntil.getTime() - Date.now(),
      );
      return;
    }
    // Rows committed while the lock was held (their wake-up found it taken): look again.
    if (!this.stopping && !(await this.isPaused(dest.config.id))) {
      const [first] = await this.store.pendingInLane(dest.config.id, lane, 1);
      if (first && first.nextAttemptAt.getTime() <= Date.now()) {
        await this.queues.wake([{ destination: dest.config.id, lane }]);
      }
    }
  }

  /** Returns when the lane is empty, paused or stopping (null) or blocked until a retry time. */
  private async deliverLane(
    dest: Destination,
    lane: number,
    renew: () => Promise<void>,
  ): Promise<Date | null> {
    const ordered = dest.config.ordering === 'patient';
    for (;;) {
      if (this.stopping || (await this.isPaused(dest.config.id))) {
        return null;
      }
      const rows = await this.store.pendingInLane(dest.config.id, lane, LANE_CHUNK);
      if (rows.length === 0) {
        return null;
      }
      const messages = await this.store.messages([
        ...new Set(rows.map((r) => r.messageId).filter((id): id is string => id !== null)),
      ]);
      let progressed = false;
      let earliest: Date | null = null;
      for (const row of rows) {
        if (this.stopping) {
          return null;
        }
        if (row.nextAttemptAt.getTime() > Date.now()) {
          if (ordered) {
            return row.nextAttemptAt; // the lane waits for its oldest row's retry
          }
          earliest = minDate(earliest, row.nextAttemptAt);
          continue;
        }
        const retryAt = await this.deliverOne(dest, row, messages);
        await renew();
        progressed = true;
        if (retryAt && ordered) {
          return retryAt;
        }
        if (retryAt) {
          earliest = minDate(earliest, retryAt);
        }
      }
      if (!progressed) {
        return earliest;
      }
    }
  }

  /** Renders and sends one delivery and records the outcome; returns the retry time if any. */
  private async deliverOne(
    dest: Destination,
    row: Delivery,
    messages: Map<string, SourceMessage>,
  ): Promise<Date | null> {
    const id = dest.config.id;
    const message = row.messageId ? messages.get(row.messageId) : undefined;
    if (row.kind === 'message' && !message) {
      await this.store.markDead(
        row.id,
        'the source message is no longer stored',
        null,
        new Date(),
        false,
      );
      this.metrics.outcomes.inc({ destination: id, outcome: 'dead' });
      return null;
    }
    let rendered;
    try {
      const route = this.routes.get(row.route);
      rendered = render(
        dest.config.format,
        {
          deliveryId: row.id,
          kind: row.kind,
          message,
          event:
            row.kind === 'event'
              ? {
                  key: row.eventKey ?? row.id,
                  type: row.eventType ?? '',
                  euid: row.euid ?? '',
                  messageId: row.messageId,
                  payload: row.payload ?? {},
                  createdAt: row.createdAt,
                }
              : undefined,
          euid: row.euid,
        },
        {
          ...this.renderOptions,
          addEuid: route?.transform.addEuid ?? true,
          rules: route?.transform.rules ?? [],
        },
      );
    } catch (err) {
      // A transform that cannot render this input will not do better later: dead-letter it.
      await this.store.markDead(
        row.id,
        `render failed: ${(err as Error).message}`,
        null,
        new Date(),
        false,
      );
      this.metrics.outcomes.inc({ destination: id, outcome: 'dead' });
      return null;
    }
    if (!rendered) {
      await this.store.markSkipped(row.id, `nothing to send as ${dest.config.format}`, new Date());
      this.metrics.outcomes.inc({ destination: id, outcome: 'skipped' });
      return null;
    }
    const started = process.hrtime.bigint();
    const outcome = await dest.sender.send(rendered, row.id);
    this.metrics.sendSeconds.observe(
      { destination: id },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    const now = new Date();
    if (outcome.ok) {
      await this.store.markDelivered(row.id, outcome.remoteAck, now);
      this.metrics.outcomes.inc({ destination: id, outcome: 'delivered' });
      this.metrics.latency.observe(
        { destination: id },
        (now.getTime() - row.createdAt.getTime()) / 1000,
      );
      return null;
    }
    const attempts = row.attempts + 1;
    if (!outcome.retry || retriesExhausted(dest.config.retry, attempts)) {
      const why = outcome.retry
        ? `gave up after ${attempts} attempts: ${outcome.error}`
        : outcome.error;
      await this.store.markDead(row.id, why, outcome.remoteAck ?? null, now);
      this.metrics.outcomes.inc({ destination: id, outcome: 'dead' });
      this.logger.warn(`delivery ${row.id} to ${id} dead-lettered: ${why}`);
      return null;
    }
    const retryAt = new Date(now.getTime() + retryDelayMs(dest.config.retry, attempts));
    await this.store.markRetry(row.id, outcome.error, outcome.remoteAck ?? null, retryAt, now);
    this.metrics.outcomes.inc({ destination: id, outcome: 'retry' });
    if (attempts === 1 || attempts % 10 === 0) {
      this.logger.warn(
        `delivery ${row.id} to ${id} failed (attempt ${attempts}, retrying): ${outcome.error}`,
      );
    }
    return retryAt;
  }
}

function minDate(a: Date | null, b: Date): Date {
  return a && a.getTime() <= b.getTime() ? a : b;
}
