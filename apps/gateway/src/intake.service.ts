import { hash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { v7 as uuidv7 } from 'uuid';
import {
  buildBatchAck,
  formatHl7DateTime,
  generateControlId,
  type Hl7Message,
  isBatch,
  readBatchHeader,
  splitMessages,
} from '@engine/hl7';
import { ENGINE_CONFIG, type EngineConfig, type FeedConfig } from '@engine/config';
import { MessageRepository, type NewMessage } from '@engine/store';
import { InboundQueues, type InboundJobData, partitionOf } from '@engine/queue';
import { GroupCommitter } from './group-committer';
import { ackFor, examine, type Rejection } from './intake';
import { gatewayMetrics } from './metrics';

export interface FrameContext {
  feed: FeedConfig;
  remoteAddress: string;
  /** When the frame was complete (for ACK latency). */
  receivedAt: Date;
}

/**
 * Durable accept of one framed payload: examine, store (group commit), ACK, enqueue.
 * AA/CA is returned only after the row is committed; enqueue follows the commit and a lost
 * enqueue is repaired by the sweeper.
 */
@Injectable()
export class IntakeService {
  private readonly logger = new Logger(IntakeService.name);
  readonly committer: GroupCommitter;
  private readonly partitions: number;

  constructor(
    @Inject(ENGINE_CONFIG) config: EngineConfig,
    messages: MessageRepository,
    private readonly queues: InboundQueues,
  ) {
    this.partitions = config.engine.partitions;
    this.committer = new GroupCommitter(messages, {
      maxBatch: config.engine.maxBatch,
      maxInflight: config.engine.maxInflightCommits,
      onCommitted: (rows, results) => this.afterCommit(rows, results),
    });
  }

  /**
   * Returns the ACK bytes to send (null when the sender asked for no ACK). Never throws.
   * A frame holding a batch (FHS/BHS … BTS/FTS) is answered with a batch of ACKs.
   */
  async accept(payload: Buffer, ctx: FrameContext): Promise<Buffer | null> {
    return isBatch(payload) ? this.acceptBatch(payload, ctx) : this.acceptMessage(payload, ctx);
  }

  /**
   * A batch in one frame: each message is stored (rejected ones kept) and acknowledged on its
   * own, all of them in the same group commit; the answer is one batch holding each message's
   * ACK in order (HL7 v2 batch protocol), sent once every message is committed.
   */
  private async acceptBatch(payload: Buffer, ctx: FrameContext): Promise<Buffer> {
    // Envelope-only pieces (an empty batch) are not messages.
    const messages = splitMessages(payload).filter((m) => !isBatch(m));
    const acks = await Promise.all(messages.map((m) => this.acceptMessage(m, ctx)));
    gatewayMetrics.batches.inc({ feed: ctx.feed.id });
    return buildBatchAck(
      readBatchHeader(payload),
      acks.filter((a): a is Buffer => a !== null),
      { controlId: generateControlId(), timestamp: formatHl7DateTime(new Date()) },
    );
  }

  private async acceptMessage(payload: Buffer, ctx: FrameContext): Promise<Buffer | null> {
    const { feed } = ctx;
    const examined = examine(payload, ctx.feed);
    const msg = examined.message;
    const row = this.toRow(payload, examined.partitionKey, msg, ctx, examined.rejection);
    if (examined.rejection) {
      return this.rejectAndKeep(row, msg, examined.rejection, feed);
    }
    const ack = ackFor(msg, 'accept', feed);
    row.ackCode = ack?.code ?? null;
    try {
      const window = feed.duplicates.policy === 'ack' ? feed.duplicates.windowSeconds * 1000 : 0;
      const result = await this.committer.submit(row, window);
      gatewayMetrics.messages.inc({
        feed: feed.id,
        outcome: result.duplicate ? 'duplicate' : 'accepted',
      });
      if (result.duplicate) {
        this.logger.log(
          `resend of message ${result.id} on feed ${feed.id}: ACKed again, not queued`,
        );
      }
      return ack?.bytes ?? null;
    } catch (err) {
      gatewayMetrics.messages.inc({ feed: feed.id, outcome: 'failed' });
      this.logger.error(
        `message ${row.id} on feed ${feed.id} not stored: ${(err as Error).message}`,
      );
      const nak = ackFor(msg, 'reject', feed, {
        code: 207,
        severity: 'E',
        text: 'Application internal error: message store unavailable, resend later',
      });
      return nak?.bytes ?? null;
    }
  }

  /** An oversize frame: answered with AR; what little we know of it is kept. */
  async acceptOversize(
    head: Buffer,
    totalBytes: number,
    ctx: FrameContext,
  ): Promise<Buffer | null> {
    gatewayMetrics.oversize.inc({ feed: ctx.feed.id });
    const examined = examine(head, ctx.feed);
    const rejection: Rejection = {
      code: 'OVERSIZE',
      outcome: 'reject',
      error: {
        code: 207,
        severity: 'E',
        text: `Message of ${totalBytes} bytes exceeds the maximum of ${ctx.feed.maxMessageBytes} bytes`,
      },
    };
    const row = this.toRow(head, examined.partitionKey, examined.message, ctx, rejection);
    return this.rejectAndKeep(row, examined.message, rejection, ctx.feed);
  }

  private async rejectAndKeep(
    row: NewMessage,
    msg: Hl7Message | undefined,
    rejection: Rejection,
    feed: FeedConfig,
  ): Promise<Buffer | null> {
    gatewayMetrics.messages.inc({ feed: feed.id, outcome: 'rejected' });
    const ack = ackFor(msg, rejection.outcome, feed, rejection.error);
    row.ackCode = ack?.code ?? null;
    try {
      await this.committer.submit(row, 0);
      this.logger.warn(`message ${row.id} on feed ${feed.id} rejected: ${rejection.code}`);
    } catch (err) {
      this.logger.error(
        `rejected message ${row.id} on feed ${feed.id} could not be kept: ${(err as Error).message}`,
      );
    }
    return ack?.bytes ?? null;
  }

  private toRow(
    raw: Buffer,
    partitionKey: string,
    msg: Hl7Message | undefined,
    ctx: FrameContext,
    rejection: Rejection | undefined,
  ): NewMessage {
    return {
      id: uuidv7(),
      feed: ctx.feed.id,
      controlId: storable(msg?.controlId ?? ''),
      type: storable(msg?.messageType ?? ''),
      trigger: storable(msg?.triggerEvent ?? ''),
      version: storable(msg?.version ?? ''),
      sendingApplication: storable(msg?.sendingApplication ?? ''),
      sendingFacility: storable(msg?.sendingFacility ?? ''),
      receivingApplication: storable(msg?.receivingApplication ?? ''),
      receivingFacility: storable(msg?.receivingFacility ?? ''),
      receivedAt: ctx.receivedAt,
      remoteAddress: ctx.remoteAddress,
      partition: partitionOf(partitionKey, this.partitions),
      partitionKey: storable(partitionKey),
      raw,
      // One-shot hash (Node ≥ 20.12): half the cost of a Hash object per message.
      contentHash: hash('sha256', raw, 'hex'),
      status: rejection ? 'rejected' : 'received',
      errorCode: rejection?.code ?? null,
      errorReason: rejection ? storable(rejection.error.text ?? '') : null,
      ackCode: null,
    };
  }

  private afterCommit(rows: NewMessage[], results: { id: string; duplicate: boolean }[]): void {
    gatewayMetrics.commitBatch.observe(rows.length);
    const jobs: InboundJobData[] = [];
    rows.forEach((r, i) => {
      if (r.status === 'received' && !results[i].duplicate) {
        jobs.push({ messageId: r.id, feed: r.feed, partition: r.partition });
      }
    });
    if (jobs.length === 0) {
      return;
    }
    this.queues.enqueueSoon(jobs, (err, count) => {
      gatewayMetrics.enqueueFailures.inc(count);
      this.logger.warn(
        `enqueue of ${count} committed message(s) failed (${err.message}); the sweeper will re-enqueue them`,
      );
    });
  }
}

/**
 * Header values go to text columns, which cannot hold NUL (PostgreSQL rejects the whole
 * statement, and with it the commit other connections share). The raw bytes keep everything.
 */
function storable(value: string): string {
  return value.includes('\u0000') ? value.split('\u0000').join('\uFFFD') : value;
}
