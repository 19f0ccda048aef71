import { randomUUID } from 'node:crypto';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { Worker } from 'bullmq';
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
import {
  createSender,
  type Rendered,
  render,
  type RenderOptions,
  retriesExhausted,
  retryDelayMs,
  type Sender,
  type SourceMessage,
} from '@engine/routing';
import { type Delivery, DeliveryStore } from '@engine/store';
import { deliveryMetrics } from './metrics';

/** Most due deliveries of one destination read at a time (lanes are started from them). */
const BATCH = 500;
/** Destination lease: one process delivers a destination at a time (order across processes). */
const LEASE_MS = 15_000;
const RENEW_MS = 5_000;
/** Longest a delivering process waits before it looks at the table again by itself. */
const IDLE_POLL_MS = 250;
/** How often a process that does not hold a destination's lease tries to take it. */
const STANDBY_POLL_MS = 2_000;
/** Failing attempts of a destination are logged at most this often. */
const RETRY_LOG_MS = 30_000;

const RENEW_LEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_LEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What happened to one delivery of a batch. */
type Outcome =
  | { kind: 'delivered'; remoteAck: string; at: Date }
  | { kind: 'retry'; error: string; remoteAck: string | null; at: Date; retryAt: Date }
  | { kind: 'dead'; error: string; remoteAck: string | null; at: Date; attempted: boolean }
  | { kind: 'skipped'; reason: string; at: Date };

/**
 * Delivers one destination's `delivery` rows (written by the pipeline in the same transaction
 * as the MPI changes). One process at a time holds the destination's lease and runs the loop:
 * read the oldest due rows (id order) of lanes that are idle, and start up to `concurrency`
 * lanes — a lane is a share of the patients, its rows sent one at a time in order. A lane is
 * released once its outcomes are written (delivered ones group-committed with other lanes').
 * A transient failure stops its lane until the retry time (nothing of that patient overtakes
 * it); a permanent one dead-letters the row and the lane goes on. BullMQ jobs on
 * `deliver-<destination>` wake the loop at once; it also looks by itself every 250 ms, so a
 * lost job (Redis flushed) only delays a delivery.
 *
 * @internal Exported for its unit test; the engine starts runners through DeliveryService.
 */
export class DestinationRunner {
  private readonly logger: Logger;
  private readonly sender: Sender;
  private readonly leaseKey: string;
  private readonly token = randomUUID();
  private holding = false;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loop?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private pausedValue = false;
  /** Lanes being sent now (their rows are not read again until their outcomes are written). */
  private readonly busyLanes = new Set<number>();
  private readonly laneTasks = new Set<Promise<void>>();
  private deliveredQueue: Array<{
    items: Array<{ id: string; remoteAck: string; at: Date }>;
    resolve: () => void;
    reject: (err: Error) => void;
  }> = [];
  private writing = false;
  private retryLoggedAt = 0;
  private retriesNotLogged = 0;

  constructor(
    readonly config: DestinationConfig,
    private readonly deps: {
      store: DeliveryStore;
      queues: DeliveryQueues;
      redis: Redis;
      prefix: string;
      renderOptions: (route: string) => RenderOptions;
      metrics: ReturnType<typeof deliveryMetrics>;
    },
  ) {
    this.logger = new Logger(`Delivery:${config.id}`);
    this.sender = createSender(config);
    this.leaseKey = `${deps.prefix}:delivery-lease:${config.id}`;
  }

  start(): void {
    this.loop = this.run().catch((err: Error) =>
      this.logger.error(`delivery loop stopped: ${err.message}`),
    );
    this.renewTimer = setInterval(() => void this.renew(), RENEW_MS);
    this.renewTimer.unref();
  }

  /** A job arrived (or the API replayed): look at the table now. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.renewTimer);
    this.wake();
    await this.loop;
    await Promise.all([...this.laneTasks]);
    if (this.holding) {
      await this.deps.redis.eval(RELEASE_LEASE, 1, this.leaseKey, this.token).catch(() => 0);
    }
    await this.sender.close();
  }

  private async renew(): Promise<void> {
    if (!this.holding) {
      return;
    }
    const ok = await this.deps.redis
      .eval(RENEW_LEASE, 1, this.leaseKey, this.token, String(LEASE_MS))
      .catch(() => 0);
    if (ok !== 1) {
      this.holding = false;
      this.logger.warn('lost the destination lease; another worker delivers now');
    }
  }

  /**
   * Read from Redis before every batch, never cached: once `POST …/pause` has answered, no
   * delivery that was not already being sent goes out (lanes in flight stop at their next row).
   */
  private async isPaused(): Promise<boolean> {
    this.pausedValue = await this.deps.queues.isPaused(this.config.id);
    return this.pausedValue;
  }

  /** Waits for a wake-up or `ms`, whichever comes first. */
  private async idle(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = null;
    this.woken = false;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.holding) {
          this.holding =
            (await this.deps.redis.set(this.leaseKey, this.token, 'PX', LEASE_MS, 'NX')) === 'OK';
          if (!this.holding) {
            await this.idle(STANDBY_POLL_MS);
            continue;
          }
        }
        if (await this.isPaused()) {
          await this.idle(IDLE_POLL_MS);
          continue;
        }
        const waitMs = await this.deliverBatch();
        if (waitMs > 0) {
          await this.idle(waitMs);
        }
      } catch (err) {
        // Database or Redis unreachable: try again shortly; rows stay pending.
        this.logger.warn(`delivery batch failed (retrying): ${(err as Error).message}`);
        await sleep(1000);
      }
    }
  }

  /**
   * Starts lanes: reads the oldest due rows of lanes that are neither being sent nor waiting
   * for a retry, and starts up to the free `concurrency` of them, each sending its rows in
   * order. A lane is released only once its outcomes are written, so its rows are never read
   * twice. Returns 0 to go on at once, or how long to wait for a wake-up.
   */
  private async deliverBatch(): Promise<number> {
    const free = this.config.concurrency - this.busyLanes.size;
    if (free <= 0) {
      return IDLE_POLL_MS; // a finishing lane wakes the loop
    }
    const now = new Date();
    const ordered = this.config.ordering === 'patient';
    // The busy lanes as they are BEFORE the queries. A lane that finishes while they run may
    // just have written a retry that the blocked-lanes query did not see; read afterwards, it
    // would no longer be skipped, and its next row would overtake the one waiting for the retry.
    const busy = [...this.busyLanes];
    const blocked = ordered
      ? await this.deps.store.blockedLanes(this.config.id, now)
      : new Map<number, Date>();
    const rows = await this.deps.store.dueDeliveries(this.config.id, now, BATCH, [
      ...new Set([...blocked.keys(), ...busy]),
    ]);
    if (rows.length === 0) {
      if (this.busyLanes.size > 0) {
        return IDLE_POLL_MS;
      }
      const next = await this.deps.store.nextDue(this.config.id);
      return next ? Math.min(IDLE_POLL_MS, Math.max(1, next.getTime() - Date.now())) : IDLE_POLL_MS;
    }
    const messages = await this.deps.store.messages([
      ...new Set(rows.map((r) => r.messageId).filter((id): id is string => id !== null)),
    ]);
    // Lanes in order of their oldest row; within a lane, id order.
    const lanes = new Map<number, Delivery[]>();
    for (const r of rows) {
      const list = lanes.get(r.lane) ?? [];
      list.push(r);
      lanes.set(r.lane, list);
    }
    let started = 0;
    for (const [lane, list] of lanes) {
      if (started >= free) {
        break;
      }
      started++;
      this.busyLanes.add(lane);
      const task = this.runLane(list, messages, ordered).finally(() => {
        this.busyLanes.delete(lane);
        this.laneTasks.delete(task);
        this.wake();
      });
      this.laneTasks.add(task);
    }
    return 0;
  }

  /** Sends one lane's rows in order, then writes their outcomes. */
  private async runLane(
    rows: Delivery[],
    messages: Map<string, SourceMessage>,
    ordered: boolean,
  ): Promise<void> {
    const outcomes = new Map<string, Outcome>();
    try {
      for (const row of rows) {
        if (this.stopping || !this.holding || this.pausedValue) {
          break;
        }
        const outcome = await this.deliverOne(row, messages);
        outcomes.set(row.id, outcome);
        if (outcome.kind === 'retry' && ordered) {
          break; // the rest of this patient's rows wait for the retry
        }
      }
      await this.record(rows, outcomes);
    } catch (err) {
      // Outcomes not written (database unreachable): the rows stay pending and go out again.
      this.logger.warn(`writing delivery outcomes failed: ${(err as Error).message}`);
    }
  }

  /**
   * Logs failing attempts at most once per {@link RETRY_LOG_MS} per destination (a receiver
   * that is down for an hour must not fill the log), with the count of the ones not logged.
   */
  private warnRetry(row: Delivery, error: string): void {
    const now = Date.now();
    if (now - this.retryLoggedAt < RETRY_LOG_MS) {
      this.retriesNotLogged++;
      return;
    }
    const more = this.retriesNotLogged > 0 ? ` (+${this.retriesNotLogged} more since)` : '';
    this.logger.warn(
      `delivery ${row.id} failed (attempt ${row.attempts + 1}, retrying): ${error}${more}`,
    );
    this.retryLoggedAt = now;
    this.retriesNotLogged = 0;
  }

  /** Writes a lane's outcomes: delivered ones together with other lanes', the others one by one. */
  private async record(rows: Delivery[], outcomes: Map<string, Outcome>): Promise<void> {
    const store = this.deps.store;
    const id = this.config.id;
    const delivered: Array<{ id: string; remoteAck: string; at: Date }> = [];
    for (const row of rows) {
      const o = outcomes.get(row.id);
      if (!o) {
        continue;
      }
      this.deps.metrics.outcomes.inc({ destination: id, outcome: o.kind });
      switch (o.kind) {
        case 'delivered':
          delivered.push({ id: row.id, remoteAck: o.remoteAck, at: o.at });
          this.deps.metrics.latency.observe(
            { destination: id },
            (o.at.getTime() - row.createdAt.getTime()) / 1000,
          );
          break;
        case 'retry':
          await store.markRetry(row.id, o.error, o.remoteAck, o.retryAt, o.at);
          this.warnRetry(row, loggable(o.error, o.remoteAck));
          break;
        case 'dead':
          await store.markDead(row.id, o.error, o.remoteAck, o.at, o.attempted);
          this.logger.warn(`delivery ${row.id} dead-lettered: ${loggable(o.error, o.remoteAck)}`);
          break;
        case 'skipped':
          await store.markSkipped(row.id, o.reason, o.at);
          break;
      }
    }
    if (delivered.length > 0) {
      await this.writeDelivered(delivered);
    }
  }

  /**
   * Group commit of delivered outcomes: lanes finishing while a write is in flight share the
   * next one (one UPDATE for all of them).
   */
  private writeDelivered(items: Array<{ id: string; remoteAck: string; at: Date }>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.deliveredQueue.push({ items, resolve, reject });
      if (!this.writing) {
        void this.flushDelivered();
      }
    });
  }

  private async flushDelivered(): Promise<void> {
    this.writing = true;
    while (this.deliveredQueue.length > 0) {
      const batch = this.deliveredQueue.splice(0);
      try {
        await this.deps.store.markDeliveredMany(batch.flatMap((b) => b.items));
        batch.forEach((b) => b.resolve());
      } catch (err) {
        batch.forEach((b) => b.reject(err as Error));
      }
    }
    this.writing = false;
  }

  /** Renders and sends one delivery. */
  private async deliverOne(row: Delivery, messages: Map<string, SourceMessage>): Promise<Outcome> {
    const message = row.messageId ? messages.get(row.messageId) : undefined;
    if (row.kind === 'message' && !message) {
      const error = 'the source message is no longer stored';
      return { kind: 'dead', error, remoteAck: null, at: new Date(), attempted: false };
    }
    let rendered: Rendered | null;
    try {
      rendered = render(
        this.config.format,
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
        this.deps.renderOptions(row.route),
      );
    } catch (err) {
      // A transform that cannot render this input will not do better later: dead-letter it.
      const error = `render failed: ${(err as Error).message}`;
      return { kind: 'dead', error, remoteAck: null, at: new Date(), attempted: false };
    }
    if (!rendered) {
      return {
        kind: 'skipped',
        reason: `nothing to send as ${this.config.format}`,
        at: new Date(),
      };
    }
    const started = process.hrtime.bigint();
    const outcome = await this.sender.send(rendered, row.id);
    this.deps.metrics.sendSeconds.observe(
      { destination: this.config.id },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    const at = new Date();
    if (outcome.ok) {
      return { kind: 'delivered', remoteAck: outcome.remoteAck, at };
    }
    const attempts = row.attempts + 1;
    const remoteAck = outcome.remoteAck ?? null;
    if (!outcome.retry || retriesExhausted(this.config.retry, attempts)) {
      const error = outcome.retry
        ? `gave up after ${attempts} attempts: ${outcome.error}`
        : outcome.error;
      return { kind: 'dead', error, remoteAck, at, attempted: true };
    }
    // The receiver's Retry-After, when it names a later time than the backoff's.
    const delay = Math.max(retryDelayMs(this.config.retry, attempts), outcome.retryAfterMs ?? 0);
    const retryAt = new Date(at.getTime() + delay);
    return { kind: 'retry', error: outcome.error, remoteAck, at, retryAt };
  }
}

/**
 * The delivery worker: a {@link DestinationRunner} per configured destination, and a BullMQ
 * worker per destination queue whose jobs wake the runner.
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly store: DeliveryStore;
  private readonly runners = new Map<string, DestinationRunner>();
  private readonly workers: Worker<DeliveryJobData>[] = [];
  private redis?: Redis;

  constructor(
    dataSource: DataSource,
    @Inject(SETTINGS) private readonly settings: Settings,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly queues: DeliveryQueues,
  ) {
    this.store = new DeliveryStore(dataSource);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.destinations.length === 0) {
      return;
    }
    this.redis = new Redis({
      ...(redisConnection(this.settings.REDIS_URL, 'worker') as RedisOptions),
      connectionName: 'engine-delivery-leases',
    });
    this.redis.on('error', (err: Error) => this.logger.warn(`lease connection: ${err.message}`));
    const routes = new Map(this.config.routes.map((r) => [r.id, r]));
    const base = {
      euidAuthority: this.config.mpi.euidAuthority,
      tables: this.config.tables,
      application: 'HL7-MPI-ENGINE',
      facility: this.config.mpi.euidAuthority,
    };
    const renderOptions = (route: string): RenderOptions => {
      const r = routes.get(route);
      return { ...base, addEuid: r?.transform.addEuid ?? true, rules: r?.transform.rules ?? [] };
    };
    const states = await this.store.destinationStates();
    for (const config of this.config.destinations) {
      // A pause or resume through the API outlives restarts; else the config decides.
      const paused = states.get(config.id)?.paused ?? config.paused;
      if (paused !== (await this.queues.isPaused(config.id))) {
        await (paused ? this.queues.pause(config.id) : this.queues.resume(config.id));
      }
      const runner = new DestinationRunner(config, {
        store: this.store,
        queues: this.queues,
        redis: this.redis,
        prefix: this.settings.QUEUE_PREFIX,
        renderOptions,
        metrics: deliveryMetrics(),
      });
      this.runners.set(config.id, runner);
      runner.start();
      const worker = new Worker<DeliveryJobData>(
        deliveryQueueName(config.id),
        () => {
          runner.wake();
          return Promise.resolve();
        },
        {
          connection: redisConnection(this.settings.REDIS_URL, 'worker'),
          prefix: this.settings.QUEUE_PREFIX,
          concurrency: 1,
        },
      );
      worker.on('error', (err) => this.logger.warn(`delivery queue ${config.id}: ${err.message}`));
      this.workers.push(worker);
    }
    this.logger.log(
      `delivering to ${this.config.destinations.map((d) => `${d.id} (${d.type}, ${d.format})`).join(', ')}`,
    );
  }

  /** Before the database and Redis close: finish the batches in flight, release the leases. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.redis?.disconnect();
  }
}

/**
 * What of a failure goes to the log: a receiver's own error text (MSA-3, ERR, an HTTP body)
 * may quote patient data, so only its answer code is logged; the full text is kept on the
 * delivery row (GET /api/deliveries/:id). Local and network errors are logged as they are.
 */
function loggable(error: string, remoteAck: string | null): string {
  return remoteAck === null ? error : `answered ${remoteAck} (details on the delivery)`;
}
