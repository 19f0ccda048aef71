import type { DataSource, DataSourceOptions } from 'typeorm';

/** The two SQL dialects the store runs on. */
export type StoreDialect = 'postgres' | 'sqlite';

/** The dialect of a data source (or its options); throws for drivers the store does not support. */
export function dialectOf(source: DataSource | DataSourceOptions): StoreDialect {
  const type = isDataSource(source) ? source.options.type : source.type;
  if (type === 'postgres') {
    return 'postgres';
  }
  if (type === 'better-sqlite3') {
    return 'sqlite';
  }
  throw new Error(`unsupported database type '${type}' (use postgres or better-sqlite3)`);
}

function isDataSource(source: DataSource | DataSourceOptions): source is DataSource {
  return 'manager' in source && 'options' in source;
}

/**
 * Column types per dialect, for entity schemas and migrations. Entities are built per dialect
 * (see `storeEntities`) because PostgreSQL and SQLite share no type name for a time stamp or a
 * byte string that TypeORM accepts on both.
 */
export interface DialectColumnTypes {
  uuid: 'uuid' | 'text';
  timestamp: 'timestamptz' | 'datetime';
  binary: 'bytea' | 'blob';
  text: 'text';
  integer: 'integer';
  json: 'jsonb' | 'json';
}

export function columnTypes(dialect: StoreDialect): DialectColumnTypes {
  return dialect === 'postgres'
    ? {
        uuid: 'uuid',
        timestamp: 'timestamptz',
        binary: 'bytea',
        text: 'text',
        integer: 'integer',
        json: 'jsonb',
      }
    : {
        uuid: 'text',
        timestamp: 'datetime',
        binary: 'blob',
        text: 'text',
        integer: 'integer',
        json: 'json',
      };
}

/**
 * SQLite stores time stamps as UTC text 'YYYY-MM-DD HH:MM:SS.SSS' (TypeORM's own format for
 * `datetime`, and one SQLite's date functions read): fixed width, so text order is time order
 * and range comparisons work on the index.
 */
export function toSqliteTimestamp(date: Date): string {
  const iso = date.toISOString();
  if (iso.length !== 24) {
    throw new RangeError(`time stamp out of range: ${iso}`);
  }
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** SQL expression for "now" in the SQLite time stamp format. */
export const SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f','now'))";
