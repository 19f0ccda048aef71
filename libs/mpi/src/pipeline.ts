import type { SurvivorshipConfig } from '@engine/config';
import { v7 as uuidv7 } from 'uuid';
import { applyMessage, collectPrefetch, emptyPrefetch, type ApplyOutcome } from './apply';
import type { IdentityResolver } from './identity';
import { ProbabilisticIdentityResolver } from './probabilistic';
import type { NormalizedMessage } from './model';
import type { MessageStatusUpdate, MpiStore } from './mpi-store';
import { lanesOf, type BatchRouter, type DeliveryLane, type RoutedMessage } from './outbox';
import type { WorkingSet } from './working-set';

/** Messages applied between two yields to the event loop. */
const YIELD_EVERY = 8;

/** One message of a batch: normalized, or failed before it could be (parse error, …). */
export interface BatchItem {
  /** The stored message; null for data that comes from no message (bulk import): no status. */
  messageId: string | null;
  receivedAt: Date;
  normalized?: NormalizedMessage;
  failure?: { code: string; reason: string };
  /** The feed the message came in on (routing); absent for bulk import (never routed). */
  feed?: string;
}

export interface BatchOutcome {
  /** One per applied item, in order (fewer than the items when a failure held the batch). */
  statuses: MessageStatusUpdate[];
  /** True when a failed message now holds the partition (policy `hold`). */
  held: boolean;
  events: number;
  /** Lanes that got deliveries: enqueue them once the batch is committed. */
  lanes: DeliveryLane[];
}

/** The apply step threw (a bug, not bad input): the item at `index` is the culprit. */
export class ApplyCrashError extends Error {
  constructor(
    readonly index: number,
    readonly error: unknown,
  ) {
    super(`applying message ${index + 1} of the batch failed: ${(error as Error)?.message}`);
  }
}

export interface MpiPipelineOptions {
  survivorship: SurvivorshipConfig;
  resultsUpdateDemographics?: boolean;
  failurePolicy?: 'park' | 'hold';
  /** Default: probabilistic matching with the shipped parameters. */
  identity?: IdentityResolver;
  /** Decides the deliveries of each batch (written in the same transaction). */
  router?: BatchRouter;
  /** Clock (tests). */
  now?: () => Date;
}

/**
 * Applies a batch of messages (one partition's, in arrival order) to the master patient index
 * in one transaction: prefetch every row the batch touches, apply each message in memory, write
 * the changes, the outbox events and the messages' statuses together. Exactly once in effect:
 * a message's changes and its `processed` status commit or roll back as one.
 */
export class MpiPipeline {
  private readonly identity: IdentityResolver;

  constructor(
    private readonly store: MpiStore,
    private readonly options: MpiPipelineOptions,
  ) {
    this.identity = options.identity ?? new ProbabilisticIdentityResolver();
  }

  async applyBatch(items: BatchItem[]): Promise<BatchOutcome> {
    const keys = emptyPrefetch();
    for (const item of items) {
      if (item.normalized) {
        collectPrefetch(item.normalized, this.identity, keys);
      }
    }
    const ws = await this.store.prefetch(keys);
    const now = this.options.now?.() ?? new Date();
    const hold = this.options.failurePolicy === 'hold';
    const statuses: MessageStatusUpdate[] = [];
    let held = false;
    for (let i = 0; i < items.length && !held; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) {
        // Let the process's other I/O (delivery ACKs, lease renewals) run between slices of
        // a large batch instead of after all of it.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const item = items[i];
      let outcome: ApplyOutcome;
      if (item.failure || !item.normalized) {
        outcome = {
          status: 'error',
          code: item.failure?.code ?? 'NOT_NORMALIZED',
          reason: item.failure?.reason ?? 'message could not be normalized',
        };
      } else {
        try {
          outcome = applyMessage(
            {
              ws,
              now,
              newId: uuidv7,
              identity: this.identity,
              survivorship: this.options.survivorship,
              resultsUpdateDemographics: this.options.resultsUpdateDemographics ?? false,
            },
            item.normalized,
            { messageId: item.messageId, receivedAt: item.receivedAt },
          );
        } catch (err) {
          throw new ApplyCrashError(i, err);
        }
      }
      if (item.messageId === null) {
        if (outcome.status === 'error') {
          throw new ApplyCrashError(i, new Error(`${outcome.code}: ${outcome.reason}`));
        }
        continue;
      }
      held = hold && outcome.status === 'error';
      statuses.push(statusOf(item.messageId, outcome, held));
    }
    const deliveries = this.options.router
      ? this.options.router.route(routedMessages(items, statuses, ws), ws.events, now)
      : [];
    await this.store.flush(ws, statuses, now, deliveries);
    return { statuses, held, events: ws.events.length, lanes: lanesOf(deliveries) };
  }

  /** Records a message that cannot be applied at all (its apply step crashes). */
  async fail(messageId: string, code: string, reason: string): Promise<BatchOutcome> {
    const held = this.options.failurePolicy === 'hold';
    const statuses = [statusOf(messageId, { status: 'error', code, reason }, held)];
    await this.store.flush(await this.store.prefetch(emptyPrefetch()), statuses, new Date());
    return { statuses, held, events: 0, lanes: [] };
  }
}

/** The applied messages of a batch that came from a feed, with their patient's person. */
function routedMessages(
  items: BatchItem[],
  statuses: MessageStatusUpdate[],
  ws: WorkingSet,
): RoutedMessage[] {
  const byId = new Map(items.map((i) => [i.messageId, i]));
  const out: RoutedMessage[] = [];
  for (const s of statuses) {
    const item = byId.get(s.id);
    const n = item?.normalized;
    if (!item?.feed || !n) {
      continue;
    }
    const p = n.patient;
    const rec = p?.mrn !== undefined ? ws.recordByKeyIfLoaded(p.authority, p.mrn) : undefined;
    out.push({
      messageId: s.id,
      feed: item.feed,
      status: s.status,
      event: n.event,
      patientClass: n.encounter?.class,
      euid: rec ? ws.owner(rec).personEuid : null,
    });
  }
  return out;
}

function statusOf(id: string, outcome: ApplyOutcome, held: boolean): MessageStatusUpdate {
  switch (outcome.status) {
    case 'processed':
      return { id, status: 'processed', errorCode: null, errorReason: null, held: false };
    case 'ignored':
      return { id, status: 'ignored', errorCode: null, errorReason: outcome.reason, held: false };
    case 'error':
      return {
        id,
        status: 'error',
        errorCode: outcome.code,
        errorReason: outcome.reason.slice(0, 1000),
        held,
      };
  }
}
