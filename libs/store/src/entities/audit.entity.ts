import { EntitySchema } from 'typeorm';
import type { AuditRecord } from '../audit.types';
import { columnTypes, type StoreDialect } from '../dialect';

/** One audit record (table `audit_log`), append-only. */
export class AuditEntity implements AuditRecord {
  id!: string;
  at!: Date;
  actor!: string;
  action!: string;
  entityType!: string;
  entityId!: string;
  remoteAddress!: string;
  details!: Record<string, unknown> | null;
}

export const AUDIT_TABLE = 'audit_log';

export const AUDIT_INDEXES = {
  entity: 'audit_log_entity_idx',
  at: 'audit_log_at_idx',
  actor: 'audit_log_actor_idx',
} as const;

export function auditEntitySchema(dialect: StoreDialect): EntitySchema<AuditEntity> {
  const t = columnTypes(dialect);
  return new EntitySchema<AuditEntity>({
    name: 'AuditEntity',
    target: AuditEntity,
    tableName: AUDIT_TABLE,
    columns: {
      id: { name: 'id', type: t.uuid, primary: true, primaryKeyConstraintName: 'audit_log_pkey' },
      at: { name: 'at', type: t.timestamp },
      actor: { name: 'actor', type: t.text },
      action: { name: 'action', type: t.text },
      entityType: { name: 'entity_type', type: t.text },
      entityId: { name: 'entity_id', type: t.text },
      remoteAddress: { name: 'remote_address', type: t.text, default: '' },
      details: { name: 'details', type: t.json, nullable: true },
    },
    indices: [
      { name: AUDIT_INDEXES.entity, columns: ['entityType', 'entityId', 'at'] },
      { name: AUDIT_INDEXES.at, columns: ['at', 'id'] },
      { name: AUDIT_INDEXES.actor, columns: ['actor', 'at'] },
    ],
  });
}
