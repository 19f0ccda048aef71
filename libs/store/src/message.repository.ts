import { Injectable } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { type DataSource, In, type Repository, type SelectQueryBuilder } from 'typeorm';
import { dialectOf, toSqliteTimestamp, type StoreDialect } from './dialect';
import { MessageEntity } from './entities/message.entity';
import { clampLimit, decodeCursor, encodeCursor, StoreError, UUID_RE } from './paging';
import { pgPool, queryPrepared } from './pg-prepared';
import type {
  FindUnqueuedOptions,
  InsertBatchOptions,
  InsertResult,
  MessagePage,
  MessageSearch,
  MessageStatus,
  MessageSummary,
  NewMessage,
  SetStatusOptions,
  StoredMessage,
  UnqueuedMessage,
} from './message.types';

/** Statuses a message can be reprocessed from (rejected payloads never entered the pipeline). */
const REPROCESSABLE: MessageStatus[] = ['processed', 'error', 'ignored'];

/**
 * Outcome of an analyst's action on a message: `done` with the row as it is now, `not-found`,
 * or `wrong-status` (the action does not apply to a message in `status`).
 */
export type MessageTransition =
  | { outcome: 'done'; message: MessageSummary }
  | { outcome: 'not-found' }
  | { outcome: 'wrong-status'; status: MessageStatus };

/** Rows per INSERT statement on PostgreSQL: 21 parameters a row stays far below 65535. */
const PG_ROWS_PER_STATEMENT = 1000;

/** Batches up to this size use named (server-side prepared) statements, one per size. */
const PG_PREPARED_MAX_ROWS = 64;

/** How often a conflicting row is retried when concurrent writers take its next generation. */
const GENERATION_ATTEMPTS = 5;

/** A TypeORM runner (entity manager in a transaction), for batches split over statements. */
interface PgRunner {
  query<T>(sql: string, params: unknown[]): Promise<T>;
}

/** Insert columns, in parameter order. */
const INSERT_COLUMNS = [
  ['id', 'uuid'],
  ['feed', 'text'],
  ['control_id', 'text'],
  ['type', 'text'],
  ['trigger', 'text'],
  ['version', 'text'],
  ['sending_application', 'text'],
  ['sending_facility', 'text'],
  ['receiving_application', 'text'],
  ['receiving_facility', 'text'],
  ['received_at', 'timestamptz'],
  ['remote_address', 'text'],
  ['partition', 'int4'],
  ['partition_key', 'text'],
  ['raw', 'bytea'],
  ['content_hash', 'text'],
  ['status', 'text'],
  ['error_code', 'text'],
  ['error_reason', 'text'],
  ['ack_code', 'text'],
] as const;
const RECEIVED_AT_PARAM = INSERT_COLUMNS.findIndex(([name]) => name === 'received_at');
const COLUMN_LIST = INSERT_COLUMNS.map(([name]) => `"${name}"`).join(', ');

/** The resend key (the unique index `message_resend_key` without resend_generation). */
const PG_SAME_KEY = `"control_id" = $2::text AND "feed" = $3::text
    AND "sending_facility" = $4::text AND "content_hash" = $5::text`;

/**
 * For a row the hot-path insert did not store: is its id stored (an earlier attempt), which
 * earlier identical row it resends (when $6), and the key's highest generation.
 */
const PG_PROBE_SQL = `SELECT
  EXISTS (SELECT 1 FROM "message" WHERE "id" = $1::uuid) AS stored,
  (SELECT "id" FROM "message"
   WHERE ${PG_SAME_KEY} AND $6::boolean AND "status" <> 'rejected'
     AND "received_at" BETWEEN $7::timestamptz AND $8::timestamptz
   ORDER BY "received_at" LIMIT 1) AS dup_id,
  (SELECT max("resend_generation") FROM "message" WHERE ${PG_SAME_KEY}) AS max_gen`;

/** One row with an explicit generation (the rare path). */
const PG_INSERT_GENERATION_SQL =
  `INSERT INTO "message" (${COLUMN_LIST}, "resend_generation") ` +
  `VALUES (${INSERT_COLUMNS.map(([, type], c) => `$${c + 1}::${type}`).join(', ')}, ` +
  `$${INSERT_COLUMNS.length + 1}::int4) ON CONFLICT DO NOTHING RETURNING "id"`;

const SUMMARY_COLUMNS: Array<keyof MessageSummary> = [
  'id',
  'feed',
  'controlId',
  'type',
  'trigger',
  'version',
  'sendingApplication',
  'sendingFacility',
  'receivingApplication',
  'receivingFacility',
  'receivedAt',
  'remoteAddress',
  'partition',
  'partitionKey',
  'contentHash',
  'status',
  'errorCode',
  'errorReason',
  'ackCode',
  'processedAt',
  'updatedAt',
];

interface SqliteStatements {
  insertAll: BetterSqlite3.Transaction<(rows: NewMessage[], window: number) => Map<number, string>>;
}

/**
 * Message rows: the gateway's durable insert (hot path, raw SQL), and the reads used by the
 * API and the sweeper. Works on PostgreSQL and SQLite; usable without Nest.
 */
@Injectable()
export class MessageRepository {
  private readonly dialect: StoreDialect;
  private readonly pgSql = new Map<string, string>();
  private sqlite: { db: BetterSqlite3.Database; statements: SqliteStatements } | undefined;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectOf(dataSource);
  }

  private get repo(): Repository<MessageEntity> {
    return this.dataSource.getRepository(MessageEntity);
  }

  /**
   * Stores a group-committed batch and returns one result per row, in input order. A row with
   * status 'received' that repeats an identical message (same feed, sending facility, control id
   * and content hash, status <> 'rejected') received within `dedupWindowMs` (either side of its
   * received_at) is not stored: its result carries the earlier row's id and `duplicate: true`.
   * The earlier row may be in the database or earlier in the same batch. Rejected rows are
   * always stored. Rows whose id is already stored (a retried commit) are left as they are and
   * reported as stored.
   *
   * The hot path does no lookup: identical rows conflict on the unique resend key
   * (..., resend_generation), so a plain `INSERT ... ON CONFLICT DO NOTHING` stores every new
   * message, and only the rows it did not store (resends, repeats, retried ids) are looked at,
   * one by one: a repeat that is not a resend is stored with the key's next generation.
   * On PostgreSQL a batch whose rows all insert is one statement (atomic); the rare rows are
   * separate statements (each idempotent by id, so a retry of a failed call is safe).
   */
  async insertBatch(rows: NewMessage[], opts: InsertBatchOptions): Promise<InsertResult[]> {
    if (rows.length === 0) {
      return [];
    }
    const window = Number.isFinite(opts.dedupWindowMs) ? Math.max(0, opts.dedupWindowMs) : 0;
    if (this.dialect === 'sqlite') {
      return this.insertBatchSqlite(rows, window);
    }
    // In-batch resends are resolved here; the database is asked only about the first of each.
    const { sameAs, toStore } = dedupWithinBatch(rows, window);
    const existing = new Map<number, string>();
    if (toStore.length <= PG_ROWS_PER_STATEMENT) {
      await this.insertChunkPg(undefined, rows, toStore, window, existing);
    } else {
      await this.dataSource.transaction(async (em) => {
        for (let i = 0; i < toStore.length; i += PG_ROWS_PER_STATEMENT) {
          const chunk = toStore.slice(i, i + PG_ROWS_PER_STATEMENT);
          await this.insertChunkPg(em, rows, chunk, window, existing);
        }
      });
    }
    return resolveResults(rows, sameAs, existing);
  }

  async findById(id: string): Promise<StoredMessage | null> {
    if (this.dialect === 'postgres' && !UUID_RE.test(id)) {
      return null;
    }
    return this.repo.findOneBy({ id });
  }

  /** Newest first, keyset-paginated on (received_at, id); no total count. */
  async search(q: MessageSearch): Promise<MessagePage> {
    const limit = clampLimit(q.limit);
    const qb = this.repo
      .createQueryBuilder('m')
      .select(SUMMARY_COLUMNS.map((c) => `m.${c}`))
      .orderBy('m.receivedAt', 'DESC')
      .addOrderBy('m.id', 'DESC')
      .limit(limit + 1);
    if (q.controlId !== undefined) {
      qb.andWhere('m.controlId = :controlId', { controlId: q.controlId });
    }
    if (q.feed !== undefined) {
      qb.andWhere('m.feed = :feed', { feed: q.feed });
    }
    if (q.status !== undefined) {
      qb.andWhere('m.status = :status', { status: q.status });
    }
    if (q.type !== undefined) {
      qb.andWhere('m.type = :type', { type: q.type });
    }
    if (q.trigger !== undefined) {
      qb.andWhere('m.trigger = :trigger', { trigger: q.trigger });
    }
    if (q.cursor) {
      const c = decodeCursor(q.cursor, this.dialect === 'postgres');
      this.keyset(qb, '<', c.at, c.id);
    }
    const found = await qb.getMany();
    const items = found.slice(0, limit).map(toSummary);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: found.length > limit && last ? encodeCursor(last.receivedAt, last.id) : null,
    };
  }

  /** Rows still 'received' and older than `olderThan`, oldest first (for the sweeper). */
  async findUnqueued(opts: FindUnqueuedOptions): Promise<UnqueuedMessage[]> {
    const qb = this.repo
      .createQueryBuilder('m')
      .select(['m.id', 'm.feed', 'm.partition', 'm.receivedAt'])
      .where('m.status = :status', { status: 'received' satisfies MessageStatus })
      .andWhere('m.receivedAt < :olderThan', { olderThan: opts.olderThan })
      .orderBy('m.receivedAt', 'ASC')
      .addOrderBy('m.id', 'ASC')
      .limit(Math.max(1, Math.floor(opts.limit)));
    if (opts.after) {
      this.keyset(qb, '>', opts.after.receivedAt, opts.after.id);
    }
    const found = await qb.getMany();
    return found.map((m) => ({
      id: m.id,
      feed: m.feed,
      partition: m.partition,
      receivedAt: m.receivedAt,
    }));
  }

  /**
   * Sets the status (and error code and reason, cleared when not given). processed_at is set
   * for processed, ignored and error, and cleared for received (reprocess). Returns false when
   * there is no such message.
   */
  async setStatus(
    id: string,
    status: MessageStatus,
    opts: SetStatusOptions = {},
  ): Promise<boolean> {
    if (this.dialect === 'postgres' && !UUID_RE.test(id)) {
      return false;
    }
    const now = new Date();
    const processedAt =
      status === 'processed' || status === 'ignored' || status === 'error'
        ? now
        : status === 'received'
          ? null
          : undefined;
    const result = await this.repo.update(
      { id },
      {
        status,
        errorCode: opts.errorCode ?? null,
        errorReason: opts.errorReason ?? null,
        updatedAt: now,
        ...(processedAt === undefined ? {} : { processedAt }),
      },
    );
    return (result.affected ?? 0) > 0;
  }

  /**
   * Reprocess: puts a processed, error or ignored message back to `received` (error code and
   * reason and processed_at cleared, held false, updated_at now) in one conditional update.
   * Rejected messages (never parsed into the pipeline) and messages already `received` give
   * `wrong-status`. The caller enqueues the job.
   */
  async reprocess(id: string): Promise<MessageTransition> {
    if (this.dialect === 'postgres' && !UUID_RE.test(id)) {
      return { outcome: 'not-found' };
    }
    const result = await this.repo.update(
      { id, status: In(REPROCESSABLE) },
      {
        status: 'received',
        errorCode: null,
        errorReason: null,
        processedAt: null,
        held: false,
        updatedAt: new Date(),
      },
    );
    return this.transitionResult(id, result.affected ?? 0);
  }

  /**
   * Skip: an analyst gives up on a message in `error`. It becomes `ignored` (held false, so its
   * partition moves on; processed_at and updated_at now). error_code is kept; error_reason
   * becomes `skipped: <reason>`, followed by `; error was: <previous reason>` when there was
   * one. Any other status gives `wrong-status`. The reason must carry no PHI.
   */
  async skip(id: string, reason: string): Promise<MessageTransition> {
    if (this.dialect === 'postgres' && !UUID_RE.test(id)) {
      return { outcome: 'not-found' };
    }
    const row = await this.repo.findOne({
      where: { id },
      select: { id: true, status: true, errorReason: true },
    });
    if (!row) {
      return { outcome: 'not-found' };
    }
    if (row.status !== 'error') {
      return { outcome: 'wrong-status', status: row.status };
    }
    const now = new Date();
    const result = await this.repo.update(
      { id, status: 'error' },
      {
        status: 'ignored',
        errorReason: row.errorReason
          ? `skipped: ${reason}; error was: ${row.errorReason}`
          : `skipped: ${reason}`,
        processedAt: now,
        held: false,
        updatedAt: now,
      },
    );
    return this.transitionResult(id, result.affected ?? 0);
  }

  private async transitionResult(id: string, affected: number): Promise<MessageTransition> {
    const row = await this.repo.findOne({ where: { id }, select: SUMMARY_COLUMNS });
    if (!row) {
      return { outcome: 'not-found' };
    }
    if (affected === 0) {
      return { outcome: 'wrong-status', status: row.status };
    }
    return { outcome: 'done', message: toSummary(row) };
  }

  /** A cheap round trip (readiness). */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  private keyset(
    qb: SelectQueryBuilder<MessageEntity>,
    op: '<' | '>',
    receivedAt: Date,
    id: string,
  ): void {
    // Row-value comparison: both PostgreSQL and SQLite (>= 3.15) use the composite index.
    qb.andWhere(`(m.receivedAt, m.id) ${op} (:ksAt, :ksId)`, { ksAt: receivedAt, ksId: id });
  }

  // ---- PostgreSQL hot path -------------------------------------------------------------------

  /**
   * One plain statement, one round trip: `INSERT ... ON CONFLICT DO NOTHING RETURNING id`,
   * sent straight to the driver's pg pool (no TypeORM query runner, entity or logging layer).
   * Batches up to PG_PREPARED_MAX_ROWS rows run as prepared statements (one per size, ADR 0009),
   * parsed once per connection; a generic plan is fine (there is no lookup to plan). The
   * conflict target is left out, so both the primary key (a retried commit) and the resend key
   * (an identical message) make a row not come back; those rows are resolved one by one.
   */
  private async insertChunkPg(
    runner: PgRunner | undefined,
    rows: NewMessage[],
    idxs: number[],
    window: number,
    existing: Map<number, string>,
  ): Promise<void> {
    const values: unknown[] = [];
    for (const i of idxs) {
      pushRowParams(values, rows[i]);
    }
    const n = idxs.length;
    const named = runner === undefined && n <= PG_PREPARED_MAX_ROWS;
    const text = this.pgInsertSql(n);
    const inserted = await this.pgQuery<{ id: string }>(runner, text, values, named);
    if (inserted.length === n) {
      return;
    }
    const stored = new Set(inserted.map((r) => r.id));
    for (const i of idxs) {
      if (!stored.has(rows[i].id)) {
        const earlier = await this.resolveConflictPg(runner, rows[i], window);
        if (earlier !== undefined) {
          existing.set(i, earlier);
        }
      }
    }
  }

  /**
   * A row the insert did not store: already stored under its id (an earlier attempt) →
   * undefined; a resend → the earlier row's id; otherwise it is stored with the key's next
   * generation (→ undefined). A concurrent writer taking that generation makes it try again
   * (the unique index serializes identical inserts, so the second one sees the first).
   */
  private async resolveConflictPg(
    runner: PgRunner | undefined,
    r: NewMessage,
    window: number,
  ): Promise<string | undefined> {
    const named = runner === undefined;
    const checkDup = window > 0 && r.status === 'received';
    const t = r.receivedAt.getTime();
    for (let attempt = 0; attempt < GENERATION_ATTEMPTS; attempt++) {
      const probeValues = [
        r.id,
        r.controlId,
        r.feed,
        r.sendingFacility,
        r.contentHash,
        checkDup,
        new Date(t - window),
        new Date(t + window),
      ];
      const [probe] = await this.pgQuery<{
        stored: boolean;
        dup_id: string | null;
        max_gen: number | null;
      }>(runner, PG_PROBE_SQL, probeValues, named);
      if (probe.stored) {
        return undefined;
      }
      if (probe.dup_id !== null) {
        return probe.dup_id;
      }
      const values: unknown[] = [];
      pushRowParams(values, r);
      values.push((probe.max_gen ?? -1) + 1);
      const inserted = await this.pgQuery<{ id: string }>(
        runner,
        PG_INSERT_GENERATION_SQL,
        values,
        named,
      );
      if (inserted.length > 0) {
        return undefined;
      }
    }
    throw new StoreError(
      'RESEND_GENERATION_CONFLICT',
      `message ${r.id}: the resend key stayed contended for ${GENERATION_ATTEMPTS} attempts`,
    );
  }

  /** Through the runner when given, else on the pool; `named`: as a prepared statement. */
  private async pgQuery<R>(
    runner: PgRunner | undefined,
    text: string,
    values: unknown[],
    named: boolean,
  ): Promise<R[]> {
    if (runner) {
      return runner.query<R[]>(text, values);
    }
    const pool = pgPool(this.dataSource);
    const result = named
      ? await queryPrepared<R>(pool, text, values)
      : await pool.query<R>({ text, values });
    return result.rows;
  }

  private pgInsertSql(n: number): string {
    const key = `r${n}`;
    let sql = this.pgSql.get(key);
    if (!sql) {
      sql =
        `INSERT INTO "message" (${COLUMN_LIST}) VALUES ${pgValues(n)} ` +
        `ON CONFLICT DO NOTHING RETURNING "id"`;
      this.pgSql.set(key, sql);
    }
    return sql;
  }

  // ---- SQLite hot path -----------------------------------------------------------------------

  private async insertBatchSqlite(rows: NewMessage[], window: number): Promise<InsertResult[]> {
    const { db, statements } = this.sqliteStatements();
    // One connection is shared with TypeORM: never nest inside a transaction it has open.
    const deadline = Date.now() + 30_000;
    while (db.inTransaction) {
      if (Date.now() > deadline) {
        throw new StoreError('SQLITE_BUSY_TRANSACTION', 'a transaction stayed open for 30 s');
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const { sameAs, toStore } = dedupWithinBatch(rows, window);
    const storeRows = toStore.map((i) => rows[i]);
    const found = statements.insertAll.immediate(storeRows, window);
    const existing = new Map<number, string>();
    for (const [k, id] of found) {
      existing.set(toStore[k], id);
    }
    return resolveResults(rows, sameAs, existing);
  }

  private sqliteStatements(): { db: BetterSqlite3.Database; statements: SqliteStatements } {
    const db = (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database })
      .databaseConnection;
    if (this.sqlite?.db === db) {
      return this.sqlite;
    }
    const sameKey = `"control_id" = ? AND "feed" = ? AND "sending_facility" = ? AND "content_hash" = ?`;
    const isStored = db
      .prepare<unknown[], number>(`SELECT 1 FROM "message" WHERE "id" = ?`)
      .pluck();
    const findDuplicate = db
      .prepare<unknown[], string>(
        `SELECT "id" FROM "message"
         WHERE ${sameKey} AND "status" <> 'rejected' AND "received_at" BETWEEN ? AND ?
         ORDER BY "received_at" LIMIT 1`,
      )
      .pluck();
    const maxGeneration = db
      .prepare<unknown[], number | null>(
        `SELECT max("resend_generation") FROM "message" WHERE ${sameKey}`,
      )
      .pluck();
    const placeholders = INSERT_COLUMNS.map(() => '?').join(', ');
    const insert = db.prepare<unknown[]>(
      `INSERT INTO "message" (${COLUMN_LIST}) VALUES (${placeholders}) ON CONFLICT DO NOTHING`,
    );
    const insertGeneration = db.prepare<unknown[]>(
      `INSERT INTO "message" (${COLUMN_LIST}, "resend_generation") VALUES (${placeholders}, ?)`,
    );
    // Same rules as PostgreSQL: a plain insert (generation 0) stores every new message; a row
    // it does not store is a retried id, a resend, or a repeat stored with the next generation.
    // The write lock (BEGIN IMMEDIATE) keeps the lookup and the insert together.
    const insertAll = db.transaction((batch: NewMessage[], window: number) => {
      const dups = new Map<number, string>();
      for (let k = 0; k < batch.length; k++) {
        const r = batch[k];
        const params = sqliteRowParams(r);
        if (insert.run(...params).changes > 0 || isStored.get(r.id) !== undefined) {
          continue;
        }
        const key = [r.controlId, r.feed, r.sendingFacility, r.contentHash];
        if (window > 0 && r.status === 'received') {
          const t = r.receivedAt.getTime();
          const id = findDuplicate.get(
            ...key,
            toSqliteTimestamp(new Date(t - window)),
            toSqliteTimestamp(new Date(t + window)),
          );
          if (id !== undefined) {
            dups.set(k, id);
            continue;
          }
        }
        insertGeneration.run(...params, (maxGeneration.get(...key) ?? -1) + 1);
      }
      return dups;
    });
    this.sqlite = { db, statements: { insertAll } };
    return this.sqlite;
  }
}

// ---- helpers -----------------------------------------------------------------------------------

/**
 * Resolves resends inside one batch, in input order: a received row identical to an earlier
 * stored-candidate row of the batch (within the window) maps to that row. Returns the map of
 * such rows and the indexes of the rows to store (or to check against the database).
 */
function dedupWithinBatch(
  rows: NewMessage[],
  window: number,
): { sameAs: Map<number, number>; toStore: number[] } {
  const sameAs = new Map<number, number>();
  const toStore: number[] = [];
  const firsts = rows.length > 1 && window > 0 ? new Map<string, number[]>() : undefined;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (firsts && r.status === 'received') {
      const key = `${r.feed}\u0000${r.sendingFacility}\u0000${r.controlId}\u0000${r.contentHash}`;
      const t = r.receivedAt.getTime();
      const candidates = firsts.get(key);
      const match = candidates?.find((c) => Math.abs(rows[c].receivedAt.getTime() - t) <= window);
      if (match !== undefined) {
        sameAs.set(i, match);
        continue;
      }
      if (candidates) {
        candidates.push(i);
      } else {
        firsts.set(key, [i]);
      }
    }
    toStore.push(i);
  }
  return { sameAs, toStore };
}

function resolveResults(
  rows: NewMessage[],
  sameAs: Map<number, number>,
  existing: Map<number, string>,
): InsertResult[] {
  return rows.map((r, i) => {
    const first = sameAs.get(i);
    if (first !== undefined) {
      return { id: existing.get(first) ?? rows[first].id, duplicate: true };
    }
    const id = existing.get(i);
    return id !== undefined ? { id, duplicate: true } : { id: r.id, duplicate: false };
  });
}

function pgValues(n: number): string {
  const width = INSERT_COLUMNS.length;
  const tuples: string[] = [];
  for (let row = 0; row < n; row++) {
    const cells = INSERT_COLUMNS.map(([, type], c) => `$${row * width + c + 1}::${type}`);
    tuples.push(`(${cells.join(', ')})`);
  }
  return tuples.join(', ');
}

function pushRowParams(params: unknown[], r: NewMessage): void {
  params.push(
    r.id,
    r.feed,
    r.controlId,
    r.type,
    r.trigger,
    r.version,
    r.sendingApplication,
    r.sendingFacility,
    r.receivingApplication,
    r.receivingFacility,
    r.receivedAt,
    r.remoteAddress,
    r.partition,
    r.partitionKey,
    r.raw,
    r.contentHash,
    r.status,
    r.errorCode ?? null,
    r.errorReason ?? null,
    r.ackCode ?? null,
  );
}

function sqliteRowParams(r: NewMessage): unknown[] {
  const params: unknown[] = [];
  pushRowParams(params, r);
  // SQLite keeps time stamps as sortable UTC text.
  params[RECEIVED_AT_PARAM] = toSqliteTimestamp(r.receivedAt);
  return params;
}

function toSummary(m: MessageEntity): MessageSummary {
  const out: Partial<Record<keyof MessageSummary, unknown>> = {};
  for (const key of SUMMARY_COLUMNS) {
    out[key] = m[key];
  }
  return out as MessageSummary;
}
