import { EntitySchema } from 'typeorm';
import { columnTypes, SQLITE_NOW, type StoreDialect } from '../dialect';
import { auditEntitySchema } from './audit.entity';
import type { MessageStatus, StoredMessage } from '../message.types';

/**
 * One framed payload as received (table `message`). The schema is owned by the migrations;
 * this mapping must match them (a test checks that TypeORM sees no pending schema change).
 */
export class MessageEntity implements StoredMessage {
  id!: string;
  feed!: string;
  controlId!: string;
  type!: string;
  trigger!: string;
  version!: string;
  sendingApplication!: string;
  sendingFacility!: string;
  receivingApplication!: string;
  receivingFacility!: string;
  receivedAt!: Date;
  remoteAddress!: string;
  partition!: number;
  partitionKey!: string;
  raw!: Buffer;
  contentHash!: string;
  status!: MessageStatus;
  errorCode!: string | null;
  errorReason!: string | null;
  ackCode!: string | null;
  processedAt!: Date | null;
  updatedAt!: Date;
  /**
   * 0 for the first row of a (control id, feed, sending facility, content hash) key; each later
   * stored row with the same key (a rejected repeat, a resend outside the window, or any repeat
   * with the dedup off) takes the next number. Not selected by default (internal to the store).
   */
  resendGeneration?: number;
  /** True while this failed message holds its partition (worker failure policy `hold`). */
  held?: boolean;
}

export const MESSAGE_TABLE = 'message';

/** Index names, shared by the migration and the mapping. */
export const MESSAGE_INDEXES = {
  /**
   * UNIQUE (control_id, feed, sending_facility, content_hash, resend_generation): the resend
   * key. Identical inserts conflict on it, which is how the insert finds resends without a
   * lookup; it also serves control-id search (leading column).
   */
  resendKey: 'message_resend_key',
  statusReceivedAt: 'message_status_received_at_idx',
  receivedAt: 'message_received_at_idx',
  /** (partition, id) WHERE status = 'received': each partition's pending messages in order. */
  pending: 'message_pending_idx',
  /** (partition) WHERE held: partitions stopped by a failed message (failure policy `hold`). */
  held: 'message_held_idx',
} as const;

/** The TypeORM mapping of `MessageEntity` for one dialect. */
export function messageEntitySchema(dialect: StoreDialect): EntitySchema<MessageEntity> {
  const t = columnTypes(dialect);
  const text = (name: string) => ({ name, type: t.text, default: '' }) as const;
  const nullableText = (name: string) => ({ name, type: t.text, nullable: true }) as const;
  return new EntitySchema<MessageEntity>({
    name: 'MessageEntity',
    target: MessageEntity,
    tableName: MESSAGE_TABLE,
    columns: {
      id: { name: 'id', type: t.uuid, primary: true, primaryKeyConstraintName: 'message_pkey' },
      feed: { name: 'feed', type: t.text },
      controlId: text('control_id'),
      type: text('type'),
      trigger: text('trigger'),
      version: text('version'),
      sendingApplication: text('sending_application'),
      sendingFacility: text('sending_facility'),
      receivingApplication: text('receiving_application'),
      receivingFacility: text('receiving_facility'),
      receivedAt: { name: 'received_at', type: t.timestamp },
      remoteAddress: text('remote_address'),
      partition: { name: 'partition', type: t.integer, default: 0 },
      partitionKey: text('partition_key'),
      raw: { name: 'raw', type: t.binary },
      contentHash: { name: 'content_hash', type: t.text },
      status: { name: 'status', type: t.text },
      errorCode: nullableText('error_code'),
      errorReason: nullableText('error_reason'),
      ackCode: nullableText('ack_code'),
      processedAt: { name: 'processed_at', type: t.timestamp, nullable: true },
      updatedAt: {
        name: 'updated_at',
        type: t.timestamp,
        default: () => (dialect === 'postgres' ? 'now()' : SQLITE_NOW),
      },
      resendGeneration: {
        name: 'resend_generation',
        type: t.integer,
        default: 0,
        select: false,
      },
      held: {
        name: 'held',
        type: 'boolean',
        default: dialect === 'postgres' ? false : () => '0',
        select: false,
      },
    },
    indices: [
      {
        name: MESSAGE_INDEXES.resendKey,
        columns: ['controlId', 'feed', 'sendingFacility', 'contentHash', 'resendGeneration'],
        unique: true,
      },
      { name: MESSAGE_INDEXES.statusReceivedAt, columns: ['status', 'receivedAt', 'id'] },
      { name: MESSAGE_INDEXES.receivedAt, columns: ['receivedAt', 'id'] },
      {
        name: MESSAGE_INDEXES.pending,
        columns: ['partition', 'id'],
        where: `"status" = 'received'`,
      },
      { name: MESSAGE_INDEXES.held, columns: ['partition'], where: `"held"` },
    ],
  });
}

/** Every entity mapping of the store, for one dialect. */
export function storeEntities(dialect: StoreDialect): EntitySchema[] {
  return [messageEntitySchema(dialect) as EntitySchema, auditEntitySchema(dialect) as EntitySchema];
}
