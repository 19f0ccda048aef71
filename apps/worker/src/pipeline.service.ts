import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { parseMessage, patientKeys, type Hl7Message } from '@engine/hl7';
import { ENGINE_CONFIG, type EngineConfig } from '@engine/config';
import {
  ApplyCrashError,
  ConcurrentUpdateError,
  createIdentityResolver,
  MpiPipeline,
  MpiStore,
  normalizeMessage,
  type BatchItem,
  type BatchOutcome,
  type PendingMessage,
} from '@engine/mpi';
import { DeliveryQueues, partitionOf } from '@engine/queue';
import { Router } from '@engine/routing';

/** What draining a partition up to a message ended with. */
export type DrainResult =
  /** Every pending message up to the mark is applied (or parked as an error). */
  | 'done'
  /** A failed message holds the partition (failure policy `hold`). */
  | 'held'
  /** A message waits for an older message of another partition it depends on (a merge). */
  | 'blocked';

export interface DrainStats {
  processed: number;
  ignored: number;
  errors: number;
  events: number;
}

/** Immediate retries of a batch that lost an optimistic-lock race. */
const CONFLICT_RETRIES = 5;

interface Prepared extends BatchItem {
  messageId: string;
  /** Partitions of the patients the message names (PID-3s, MRG-1). */
  otherPartitions: number[];
}

/**
 * Applies a partition's pending messages to the MPI in arrival order (message id order),
 * batch by batch. Order comes from the database, not from the queue: a job only says "there is
 * work up to this message", so a retried, stalled or re-enqueued job can never reorder a
 * patient's messages. A message naming a patient of another partition (a merge's prior id)
 * waits until that partition has applied everything older than it.
 */
@Injectable()
export class PipelineService {
  private readonly logger = new Logger(PipelineService.name);
  private readonly store: MpiStore;
  private readonly pipeline: MpiPipeline;
  /** SQLite has one connection: batches of different partitions must not interleave. */
  private sqliteChain: Promise<unknown> = Promise.resolve();

  constructor(
    dataSource: DataSource,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    private readonly deliveries: DeliveryQueues,
  ) {
    this.store = new MpiStore(dataSource);
    const router = new Router(config);
    this.pipeline = new MpiPipeline(this.store, {
      identity: createIdentityResolver(config.mpi.identity, config.mpi.matching),
      survivorship: config.mpi.survivorship,
      resultsUpdateDemographics: config.mpi.resultsUpdateDemographics,
      failurePolicy: config.worker.failurePolicy,
      router: router.active ? router : undefined,
    });
  }

  isHeld(partition: number): Promise<boolean> {
    return this.store.isHeld(partition);
  }

  /** Applies the partition's pending messages with ids up to `upToId`. */
  async drain(partition: number, upToId: string, stats?: DrainStats): Promise<DrainResult> {
    for (;;) {
      const rows = await this.store.loadPending(partition, upToId, this.config.worker.batchSize);
      if (rows.length === 0) {
        return 'done';
      }
      const items = rows.map((r) => this.prepare(r));
      let cut = items.length;
      find: for (let i = 0; i < items.length; i++) {
        for (const q of items[i].otherPartitions) {
          if (q !== partition && (await this.store.hasPendingBefore(q, items[i].messageId))) {
            cut = i;
            break find;
          }
        }
      }
      if (cut === 0) {
        return 'blocked';
      }
      const outcome = await this.applyIsolated(items.slice(0, cut));
      // Committed: wake the destinations the batch wrote deliveries for (a lost wake-up only
      // delays them: the delivering loop also polls).
      this.deliveries.wakeSoon(outcome.lanes);
      if (stats) {
        for (const s of outcome.statuses) {
          if (s.status === 'processed') {
            stats.processed++;
          } else if (s.status === 'ignored') {
            stats.ignored++;
          } else {
            stats.errors++;
          }
        }
        stats.events += outcome.events;
      }
      for (const s of outcome.statuses) {
        if (s.status === 'error') {
          this.logger.warn(`message ${s.id}: ${s.errorCode} (${s.errorReason ?? ''})`);
        }
      }
      if (outcome.held) {
        return 'held';
      }
      if (outcome.statuses.length < cut) {
        continue; // a crash split the batch: go on from the culprit
      }
      if (cut < items.length) {
        return 'blocked';
      }
      if (rows.length < this.config.worker.batchSize) {
        // Everything up to the mark was pending in this one read: nothing is left (a message
        // set back to `received` by a reprocess comes with a job of its own).
        return 'done';
      }
    }
  }

  /**
   * Applies a batch; a message whose apply step crashes is applied alone after the ones before
   * it and then marked `error` (PROCESSING_FAILED), so one bad message never blocks the rest.
   */
  private async applyIsolated(items: Prepared[]): Promise<BatchOutcome> {
    try {
      return await this.withRetries(() => this.pipeline.applyBatch(items));
    } catch (err) {
      if (!(err instanceof ApplyCrashError)) {
        throw err;
      }
      if (err.index > 0) {
        return this.applyIsolated(items.slice(0, err.index));
      }
      const reason = (err.error as Error)?.message ?? String(err.error);
      this.logger.error(`message ${items[0].messageId}: apply step failed: ${reason}`);
      return this.withRetries(() =>
        this.pipeline.fail(items[0].messageId, 'PROCESSING_FAILED', reason),
      );
    }
  }

  private async withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.serialized(fn);
      } catch (err) {
        if (!(err instanceof ConcurrentUpdateError) || attempt >= CONFLICT_RETRIES) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));
      }
    }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    if (this.store.dialect !== 'sqlite') {
      return fn();
    }
    const next = this.sqliteChain.then(fn, fn);
    this.sqliteChain = next.catch(() => undefined);
    return next;
  }

  private prepare(row: PendingMessage): Prepared {
    const feed = this.config.feeds.find((f) => f.id === row.feed);
    let msg: Hl7Message;
    try {
      msg = parseMessage(row.raw, { defaultCharset: feed?.defaultCharset });
    } catch (err) {
      return {
        messageId: row.id,
        receivedAt: row.receivedAt,
        failure: { code: 'PARSE_ERROR', reason: (err as Error).message },
        otherPartitions: [],
      };
    }
    try {
      return {
        messageId: row.id,
        receivedAt: row.receivedAt,
        feed: row.feed,
        normalized: normalizeMessage(msg),
        otherPartitions: this.otherPartitions(msg),
      };
    } catch (err) {
      return {
        messageId: row.id,
        receivedAt: row.receivedAt,
        failure: { code: 'NORMALIZE_ERROR', reason: (err as Error).message },
        otherPartitions: [],
      };
    }
  }

  /** Partitions of every patient the message names (the own one is skipped by the caller). */
  private otherPartitions(msg: Hl7Message): number[] {
    const partitions = this.config.engine.partitions;
    return [...new Set(patientKeys(msg).all.map((k) => partitionOf(k, partitions)))];
  }
}
