import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource, type DataSourceOptions, type EntitySchema, type MixedList } from 'typeorm';
import type { StoreDialect } from './dialect';
import { storeEntities } from './entities/message.entity';
import { storeMigrations } from './migrations';

export const DEFAULT_SQLITE_PATH = 'data/engine.sqlite';
export const DEFAULT_POOL_SIZE = 10;
/** How long a SQLite writer waits for another process's write lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

export interface StoreOptions {
  /** postgres:// URL. Unset or empty: the embedded SQLite file at `sqlitePath`. */
  databaseUrl?: string;
  /** SQLite file (default 'data/engine.sqlite'); its folder is created when missing. */
  sqlitePath?: string;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** Log SQL (default false). Never on in production: parameters carry PHI. */
  logging?: boolean;
  /** Run pending migrations when the data source initializes (default true). */
  migrationsRun?: boolean;
  /** Extra entity mappings (per dialect) owned by other libraries. */
  entities?: (dialect: StoreDialect) => MixedList<string | (new () => unknown) | EntitySchema>;
  /** Extra migrations owned by other libraries; they run after the store's own. */
  migrations?: Array<new () => unknown>;
}

/** TypeORM options for the engine's database. Migrations run at start; never `synchronize`. */
export function createDataSourceOptions(options: StoreOptions = {}): DataSourceOptions {
  const common = {
    synchronize: false,
    migrationsRun: options.migrationsRun ?? true,
    migrationsTableName: 'migrations',
    logging: options.logging ?? false,
  } as const;
  const extraMigrations = options.migrations ?? [];
  if (options.databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(options.databaseUrl)) {
      throw new Error('databaseUrl must be a postgres:// or postgresql:// URL');
    }
    const extra = options.entities?.('postgres') ?? [];
    return {
      ...common,
      type: 'postgres',
      url: options.databaseUrl,
      poolSize: options.poolSize ?? DEFAULT_POOL_SIZE,
      extra: {
        // Fail fast when the server is unreachable: the gateway answers AR 207, never hangs.
        connectionTimeoutMillis: 5000,
        // A half-open connection must not hold a commit (and the ACKs waiting on it) for hours.
        query_timeout: 30_000,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      },
      entities: [...storeEntities('postgres'), ...toArray(extra)],
      migrations: [...storeMigrations, ...extraMigrations],
    };
  }
  const database = options.sqlitePath ?? DEFAULT_SQLITE_PATH;
  if (database !== ':memory:') {
    mkdirSync(dirname(database), { recursive: true });
  }
  const extra = options.entities?.('sqlite') ?? [];
  return {
    ...common,
    type: 'better-sqlite3',
    database,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    enableWAL: true,
    prepareDatabase: prepareSqlite,
    entities: [...storeEntities('sqlite'), ...toArray(extra)],
    migrations: [...storeMigrations, ...extraMigrations],
  };
}

/** A data source for the options (not yet initialized: call `initialize()`). */
export function createDataSource(options: StoreOptions = {}): DataSource {
  return new DataSource(createDataSourceOptions(options));
}

/**
 * SQLite durability: WAL journal, and `synchronous = FULL` so that every commit fsyncs the WAL.
 * With NORMAL a power loss can drop the last commits, and the gateway ACKs after commit.
 */
function prepareSqlite(db: BetterSqlite3.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
}

function toArray<T>(list: MixedList<T>): T[] {
  return Array.isArray(list) ? list : Object.values(list);
}
