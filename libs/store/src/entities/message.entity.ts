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
}

export const MESSAGE_TABLE = 'message';

/** Index names, shared by the migration and the mapping. */
export const MESSAGE_INDEXES = {
  /** Control-id search, and the resend lookup (control id + feed, received_at range). */
  controlId: 'message_control_id_idx',
  statusReceivedAt: 'message_status_received_at_idx',
  receivedAt: 'message_received_at_idx',
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
    },
    indices: [
      { name: MESSAGE_INDEXES.controlId, columns: ['controlId', 'feed', 'receivedAt'] },
      { name: MESSAGE_INDEXES.statusReceivedAt, columns: ['status', 'receivedAt', 'id'] },
      { name: MESSAGE_INDEXES.receivedAt, columns: ['receivedAt', 'id'] },
    ],
  });
}

/** Every entity mapping of the store, for one dialect. */
export function storeEntities(dialect: StoreDialect): EntitySchema[] {
  return [messageEntitySchema(dialect) as EntitySchema, auditEntitySchema(dialect) as EntitySchema];
}
