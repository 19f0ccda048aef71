import type { DataSource } from 'typeorm';

/**
 * PostgreSQL named (prepared) statements for the hot paths.
 *
 * An unnamed statement is parsed and planned on every execution; a named one is parsed once
 * per connection and its plan is reused. For the set-based statements of the pipeline and the
 * delivery loop (`jsonb_to_recordset`, `= ANY($1)`) parse and plan are about half of the
 * server's CPU per statement (docs/decisions/0009-prepared-statements-and-plans.md).
 */

/** A pg query config (the subset used here). */
export interface PgQueryConfig {
  name?: string;
  text: string;
  values?: unknown[];
}

export interface PgQueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** Something that runs a pg query config: a pg Pool or a checked-out client. */
export interface PgQueryable {
  query<R = Record<string, unknown>>(config: PgQueryConfig): Promise<PgQueryResult<R>>;
}

/**
 * Distinct statement texts this process names. Each connection keeps a plan per name for its
 * lifetime, so the set is bounded: texts beyond it run unnamed (texts vary only with the length
 * of a parameter list, so a handful of hot shapes covers nearly every execution).
 */
export const MAX_PREPARED_STATEMENTS = 256;

const names = new Map<string, string>();

/** The prepared-statement name for a SQL text (stable within the process), or undefined. */
export function preparedName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_PREPARED_STATEMENTS) {
    name = `engine_q${names.size}`;
    names.set(text, name);
  }
  return name;
}

/** Runs `text` as a named statement when it has a name, unnamed otherwise. */
export function queryPrepared<R = Record<string, unknown>>(
  db: PgQueryable,
  text: string,
  values: unknown[] = [],
): Promise<PgQueryResult<R>> {
  const name = preparedName(text);
  return db.query<R>(name === undefined ? { text, values } : { name, text, values });
}

/**
 * The pg Pool under a TypeORM PostgreSQL data source, for statements sent to the driver
 * directly (no query runner, entity or logging layer on the hot paths).
 */
export function pgPool<P extends PgQueryable = PgQueryable>(dataSource: DataSource): P {
  const pool = (dataSource.driver as unknown as { master?: P }).master;
  if (pool === undefined) {
    throw new Error('data source is not initialized');
  }
  return pool;
}
