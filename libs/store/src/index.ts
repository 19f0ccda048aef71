export * from './message.types';
export * from './audit.types';
export { AuditRepository } from './audit.repository';
export {
  AUDIT_INDEXES,
  AUDIT_TABLE,
  AuditEntity,
  auditEntitySchema,
} from './entities/audit.entity';
export {
  createDataSource,
  createDataSourceOptions,
  DEFAULT_POOL_SIZE,
  DEFAULT_SQLITE_PATH,
  SQLITE_BUSY_TIMEOUT_MS,
  type StoreOptions,
} from './data-source';
export {
  columnTypes,
  dialectOf,
  toSqliteTimestamp,
  type DialectColumnTypes,
  type StoreDialect,
} from './dialect';
export {
  MESSAGE_INDEXES,
  MESSAGE_TABLE,
  MessageEntity,
  messageEntitySchema,
  storeEntities,
} from './entities/message.entity';
export { storeMigrations } from './migrations';
export { MessageRepository } from './message.repository';
export { DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, StoreError } from './paging';
export { runMigrationsLocked, StoreModule, type StoreModuleAsyncOptions } from './store.module';
export {
  DELIVERY_STATUSES,
  DeliveryStore,
  type Delivery,
  type DeliveryLane,
  type DeliverySearch,
  type DeliveryStatus,
  type DestinationCounts,
  type DestinationState,
  type StoredMessageBytes,
} from './delivery.store';
export { fromJson, toDate } from './sql-values';
export {
  MAX_PREPARED_STATEMENTS,
  pgPool,
  preparedName,
  queryPrepared,
  type PgQueryable,
  type PgQueryConfig,
  type PgQueryResult,
} from './pg-prepared';
