import type BetterSqlite3 from 'better-sqlite3';
import type { DataSource } from 'typeorm';
import {
  dialectOf,
  fromJson,
  pgPool,
  queryPrepared,
  toDate,
  toSqliteTimestamp,
  type PgQueryable,
  type StoreDialect,
} from '@engine/store';
import type { PrefetchKeys } from './apply';
import type { DeliveryRow } from './outbox';
import type { EncounterRow, IdentifierRow, PersonRow, ResultRow, SourceRecordRow } from './rows';
import { WorkingSet } from './working-set';

/** A write lost a race (a row changed since it was read): retry the batch. */
export class ConcurrentUpdateError extends Error {}

/** A pending inbound message of a partition, as the pipeline loads it. */
export interface PendingMessage {
  id: string;
  feed: string;
  raw: Buffer;
  receivedAt: Date;
}

/** The final status of one message, written with the MPI changes it caused. */
export interface MessageStatusUpdate {
  id: string;
  status: 'processed' | 'ignored' | 'error';
  errorCode: string | null;
  errorReason: string | null;
  /** Hold the partition (failure policy `hold`). */
  held: boolean;
}

type ColType = 'uuid' | 'text' | 'json' | 'time' | 'int' | 'bigint' | 'bool' | 'float';
interface Col {
  name: string;
  type: ColType;
}
type Row = Record<string, unknown>;

const PG_TYPES: Record<ColType, string> = {
  uuid: 'uuid',
  text: 'text',
  json: 'jsonb',
  time: 'timestamptz',
  int: 'int4',
  bigint: 'int8',
  bool: 'bool',
  float: 'float8',
};

/** Most candidates one blocking key contributes (a very common key says little). */
export const MAX_CANDIDATES_PER_BLOCK = 100;

function cols(spec: string): Col[] {
  return spec.split(/\s*,\s*/).map((c) => {
    const [name, type] = c.split(':');
    return { name, type: type as ColType };
  });
}

const PERSON_COLS = cols(
  'euid:uuid, status:text, merged_into:uuid, golden:json, provenance:json, family_name:text, ' +
    'given_name:text, birth_date:text, sex:text, version:int, created_at:time, updated_at:time',
);
const RECORD_COLS = cols(
  'id:uuid, authority:text, mrn:text, person_euid:uuid, status:text, merged_into:uuid, ' +
    'data:json, data_time:bigint, last_message_id:uuid, version:int, created_at:time, updated_at:time',
);
const IDENTIFIER_COLS = cols(
  'source_record_id:uuid, authority:text, value:text, type:text, retired:bool',
);
const ENCOUNTER_COLS = cols(
  'id:uuid, origin_record_id:uuid, visit_key:text, source_record_id:uuid, status:text, data:json, ' +
    'data_time:bigint, created_at:time, updated_at:time',
);
const RESULT_COLS = cols(
  'id:uuid, origin_record_id:uuid, order_key:text, source_record_id:uuid, status:text, data:json, ' +
    'data_time:bigint, created_at:time, updated_at:time',
);
const DELIVERY_COLS = cols(
  'destination:text, route:text, lane:int, kind:text, message_id:uuid, event_type:text, ' +
    'event_key:text, euid:uuid, payload:json, dedupe_key:text, status:text, attempts:int, ' +
    'redeliveries:int, created_at:time, next_attempt_at:time, updated_at:time',
);
const EVENT_COLS = cols('type:text, euid:uuid, message_id:uuid, payload:json, created_at:time');
const HISTORY_COLS = cols(
  'id:uuid, kind:text, survivor_euid:uuid, subject_euid:uuid, source_record_id:uuid, ' +
    'message_id:uuid, actor:text, reason:text, before:json, created_at:time',
);
const BLOCK_COLS = cols('key:text, source_record_id:uuid');
const TASK_COLS = cols(
  'id:uuid, pair_key:text, left_record_id:uuid, right_record_id:uuid, left_euid:uuid, ' +
    'right_euid:uuid, score:float, breakdown:json, facility:text, status:text, message_id:uuid, ' +
    'created_at:time, updated_at:time',
);
const DECISION_COLS = cols(
  'id:uuid, status:text, decided_by:text, decision_reason:text, decided_at:time',
);
const STATUS_COLS = cols(
  'id:uuid, status:text, error_code:text, error_reason:text, held:bool, processed_at:time',
);

interface PgClient extends PgQueryable {
  release(err?: Error | boolean): void;
}
interface PgPool extends PgQueryable {
  connect(): Promise<PgClient>;
}

/** One write: a statement over many rows, with the number of rows it must touch (or -1). */
interface Write {
  table: string;
  kind:
    | 'insert'
    | 'update'
    | 'delete-identifiers'
    | 'delete-blocks'
    | 'move'
    | 'status'
    | 'task-decision';
  /** Insert: skip rows that conflict with a unique key (worklist pairs already decided). */
  ignoreConflicts?: boolean;
  cols: Col[];
  rows: Row[];
  key?: string;
  versioned?: boolean;
}

/**
 * Loads the slice of the master patient index a batch needs into a {@link WorkingSet}, and
 * writes a working set back with the messages' final statuses in one transaction, on
 * PostgreSQL (set-based statements over `jsonb_to_recordset`, optimistic version checks) or
 * SQLite (one synchronous better-sqlite3 transaction, so nothing else on the shared connection
 * can interleave with it).
 */
export class MpiStore {
  readonly dialect: StoreDialect;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectOf(dataSource);
  }

  private get pool(): PgPool {
    return pgPool<PgPool>(this.dataSource);
  }

  private get sqlite(): BetterSqlite3.Database {
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database })
      .databaseConnection;
  }

  private async read(sql: string, params: unknown[]): Promise<Row[]> {
    if (this.dialect === 'postgres') {
      // Unnamed: planned with each call's values. A cached generic plan for these lookups on
      // non-unique columns is fixed at the first executions, and a table that is still small
      // or never analyzed then (a new MPI) keeps a sequential scan for good.
      return (await this.pool.query<Row>({ text: sql, values: params })).rows;
    }
    return this.sqlite.prepare(sql).all(...params.map(sqliteParam)) as Row[];
  }

  /** `col IN (…)` for a list of values (PostgreSQL: `= ANY($n)`). */
  private inList(col: string, values: unknown[], params: unknown[], pgType = 'text'): string {
    if (this.dialect === 'postgres') {
      params.push(values);
      return `${col} = ANY($${params.length}::${pgType}[])`;
    }
    params.push(...values);
    return `${col} IN (${values.map(() => '?').join(', ')})`;
  }

  private p(params: unknown[], value: unknown): string {
    params.push(value);
    return this.dialect === 'postgres' ? `$${params.length}` : '?';
  }

  // ---- messages ------------------------------------------------------------------------

  /** Pending messages of a partition up to `upToId`, oldest first. */
  async loadPending(partition: number, upToId: string, limit: number): Promise<PendingMessage[]> {
    const params: unknown[] = [];
    const sql =
      `SELECT "id", "feed", "raw", "received_at" FROM "message" WHERE "partition" = ${this.p(params, partition)} ` +
      `AND "status" = 'received' AND "id" <= ${this.p(params, upToId)} ` +
      // The order of message_pending_idx (partition, id): with fresh statistics the planner
      // otherwise walks the primary key for ORDER BY id, through every processed message.
      `ORDER BY "partition", "id" LIMIT ${this.p(params, limit)}`;
    const rows = await this.read(sql, params);
    return rows.map((r) => ({
      id: String(r.id),
      feed: String(r.feed),
      raw: r.raw as Buffer,
      receivedAt: toDate(r.received_at),
    }));
  }

  /** Whether a partition has a pending message older than `beforeId`. */
  async hasPendingBefore(partition: number, beforeId: string): Promise<boolean> {
    const params: unknown[] = [];
    const rows = await this.read(
      `SELECT 1 AS x FROM "message" WHERE "partition" = ${this.p(params, partition)} ` +
        `AND "status" = 'received' AND "id" < ${this.p(params, beforeId)} ` +
        // As in loadPending: the order of message_pending_idx, whatever the statistics say about
        // how common 'received' is (a LIMIT 1 seq scan through processed rows otherwise).
        `ORDER BY "partition", "id" LIMIT 1`,
      params,
    );
    return rows.length > 0;
  }

  /** Whether a failed message holds the partition. */
  async isHeld(partition: number): Promise<boolean> {
    const params: unknown[] = [];
    const rows = await this.read(
      `SELECT 1 AS x FROM "message" WHERE "partition" = ${this.p(params, partition)} AND "held" LIMIT 1`,
      params,
    );
    return rows.length > 0;
  }

  // ---- prefetch ------------------------------------------------------------------------

  /** Loads what applying messages with these keys needs. */
  async prefetch(keys: PrefetchKeys): Promise<WorkingSet> {
    const ws = new WorkingSet();
    const unique = new Map(keys.records.map(([a, m]) => [`${a}\u001f${m}`, [a, m] as const]));
    if (unique.size > 0) {
      const params: unknown[] = [];
      let where: string;
      if (this.dialect === 'postgres') {
        params.push(
          [...unique.values()].map(([a]) => a),
          [...unique.values()].map(([, m]) => m),
        );
        where = `("authority", "mrn") IN (SELECT * FROM unnest($1::text[], $2::text[]))`;
      } else {
        where = `("authority", "mrn") IN (VALUES ${[...unique.values()]
          .map(([a, m]) => {
            params.push(a, m);
            return '(?, ?)';
          })
          .join(', ')})`;
      }
      for (const r of await this.read(`SELECT * FROM "mpi_source_record" WHERE ${where}`, params)) {
        ws.addRecord(recordFromRow(r));
      }
      unique.forEach(([a, m]) => ws.markKeyLoaded(a, m));
    }
    // Identity candidates only for patients whose record is new (nothing else is matched).
    for (const { authority, mrn, needs } of keys.identity) {
      if (!ws.recordByKeyIfLoaded(authority, mrn)) {
        needs.ssns.forEach((v) => keys.ssns.add(v));
        needs.blockKeys.forEach((v) => keys.blockKeys.add(v));
      }
    }
    if (keys.ssns.size > 0) {
      const params: unknown[] = [];
      const rows = await this.read(
        `SELECT r.*, i."value" AS ssn FROM "mpi_identifier" i JOIN "mpi_source_record" r ON r."id" = i."source_record_id" ` +
          `WHERE i."type" = 'SS' AND NOT i."retired" AND r."status" = 'active' AND ${this.inList('i."value"', [...keys.ssns], params)}`,
        params,
      );
      const bySsn = new Map<string, string[]>([...keys.ssns].map((s) => [s, []]));
      for (const r of rows) {
        ws.addRecord(recordFromRow(r));
        bySsn.get(String(r.ssn))?.push(String(r.id));
      }
      bySsn.forEach((ids, ssn) => ws.markSsnLoaded(ssn, ids));
    }
    if (keys.blockKeys.size > 0) {
      await this.loadBlocks(ws, [...keys.blockKeys]);
    }
    await this.closeOver(ws);
    const ids = [...ws.records.keys()];
    if (ids.length > 0) {
      await this.loadIdentifiers(ws, ids);
      await this.loadChildren(ws, ids, keys);
    }
    return ws;
  }

  /** Loads persons (with all their records and identifiers) for an MPI operation. */
  async prefetchPersons(euids: string[], recordIds: string[] = []): Promise<WorkingSet> {
    const ws = new WorkingSet();
    if (recordIds.length > 0) {
      const params: unknown[] = [];
      for (const r of await this.read(
        `SELECT * FROM "mpi_source_record" WHERE ${this.inList('"id"', recordIds, params, 'uuid')}`,
        params,
      )) {
        ws.addRecord(recordFromRow(r));
      }
    }
    if (euids.length > 0) {
      const params: unknown[] = [];
      for (const p of await this.read(
        `SELECT * FROM "mpi_person" WHERE ${this.inList('"euid"', euids, params, 'uuid')}`,
        params,
      )) {
        ws.addPerson(personFromRow(p));
      }
    }
    // Persons merged since: follow them to where they ended.
    for (let i = 0; i < 16; i++) {
      const next = [...ws.persons.values()]
        .map((p) => p.mergedInto)
        .filter((e): e is string => e !== null && !ws.persons.has(e));
      if (next.length === 0) {
        break;
      }
      const params: unknown[] = [];
      for (const p of await this.read(
        `SELECT * FROM "mpi_person" WHERE ${this.inList('"euid"', next, params, 'uuid')}`,
        params,
      )) {
        ws.addPerson(personFromRow(p));
      }
    }
    const all = [...ws.persons.keys()];
    if (all.length > 0) {
      const params: unknown[] = [];
      for (const r of await this.read(
        `SELECT * FROM "mpi_source_record" WHERE ${this.inList('"person_euid"', all, params, 'uuid')}`,
        params,
      )) {
        ws.addRecord(recordFromRow(r));
      }
      all.forEach((e) => ws.markPersonComplete(e));
    }
    await this.closeOver(ws);
    const ids = [...ws.records.keys()];
    if (ids.length > 0) {
      await this.loadIdentifiers(ws, ids);
    }
    return ws;
  }

  /** The active records of each blocking key (at most MAX_CANDIDATES_PER_BLOCK per key). */
  private async loadBlocks(ws: WorkingSet, keys: string[]): Promise<void> {
    const byKey = new Map<string, string[]>(keys.map((k) => [k, []]));
    let rows: Row[];
    if (this.dialect === 'postgres') {
      rows = await this.read(
        // Each candidate's record by primary key, in a lateral subquery of its own (`LIMIT 1`
        // keeps the planner from flattening it into a join): joined as a whole, the planner
        // expects keys × limit rows and hashes a sequential scan of every source record, or
        // scans the records and probes the blocks for each.
        `SELECT k."key" AS block_key, r.* FROM unnest($1::text[]) AS k("key")
         CROSS JOIN LATERAL (SELECT b."source_record_id" FROM "mpi_block" b WHERE b."key" = k."key" LIMIT $2) b
         CROSS JOIN LATERAL (SELECT * FROM "mpi_source_record" r WHERE r."id" = b."source_record_id" AND r."status" = 'active' LIMIT 1) r`,
        [keys, MAX_CANDIDATES_PER_BLOCK],
      );
    } else {
      rows = [];
      const stmt = this.sqlite.prepare(
        `SELECT b."key" AS block_key, r.* FROM "mpi_block" b JOIN "mpi_source_record" r ON r."id" = b."source_record_id" ` +
          `WHERE b."key" = ? AND r."status" = 'active' LIMIT ?`,
      );
      for (const k of keys) {
        rows.push(...(stmt.all(k, MAX_CANDIDATES_PER_BLOCK) as Row[]));
      }
    }
    for (const r of rows) {
      ws.addRecord(recordFromRow(r));
      byKey.get(String(r.block_key))?.push(String(r.id));
    }
    byKey.forEach((ids, key) => ws.markBlockLoaded(key, ids));
  }

  /** Adds merge targets, persons, and every record of those persons, until nothing is new. */
  private async closeOver(ws: WorkingSet): Promise<void> {
    for (let round = 0; round < 16; round++) {
      const missingRecords = new Set<string>();
      const missingPersons = new Set<string>();
      for (const r of ws.records.values()) {
        if (r.mergedInto && !ws.records.has(r.mergedInto)) {
          missingRecords.add(r.mergedInto);
        }
        if (!ws.isPersonComplete(r.personEuid)) {
          missingPersons.add(r.personEuid);
        }
      }
      if (missingRecords.size === 0 && missingPersons.size === 0) {
        return;
      }
      if (missingRecords.size > 0) {
        const params: unknown[] = [];
        for (const r of await this.read(
          `SELECT * FROM "mpi_source_record" WHERE ${this.inList('"id"', [...missingRecords], params, 'uuid')}`,
          params,
        )) {
          ws.addRecord(recordFromRow(r));
        }
      }
      if (missingPersons.size > 0) {
        const euids = [...missingPersons];
        let params: unknown[] = [];
        for (const p of await this.read(
          `SELECT * FROM "mpi_person" WHERE ${this.inList('"euid"', euids, params, 'uuid')}`,
          params,
        )) {
          ws.addPerson(personFromRow(p));
        }
        params = [];
        for (const r of await this.read(
          `SELECT * FROM "mpi_source_record" WHERE ${this.inList('"person_euid"', euids, params, 'uuid')}`,
          params,
        )) {
          ws.addRecord(recordFromRow(r));
        }
        euids.forEach((e) => ws.markPersonComplete(e));
      }
    }
    throw new Error('MPI prefetch did not converge (merge chain too long?)');
  }

  private async loadIdentifiers(ws: WorkingSet, ids: string[]): Promise<void> {
    const params: unknown[] = [];
    const rows = await this.read(
      `SELECT * FROM "mpi_identifier" WHERE ${this.inList('"source_record_id"', ids, params, 'uuid')}`,
      params,
    );
    for (const row of rows) {
      ws.records.get(String(row.source_record_id))?.identifiers.push(identifierFromRow(row));
    }
  }

  private async loadChildren(ws: WorkingSet, ids: string[], keys: PrefetchKeys): Promise<void> {
    if (keys.visitKeys.size > 0) {
      const params: unknown[] = [];
      const rows = await this.read(
        `SELECT * FROM "mpi_encounter" WHERE ${this.inList('"source_record_id"', ids, params, 'uuid')} ` +
          `AND ${this.inList('"visit_key"', [...keys.visitKeys], params)}`,
        params,
      );
      rows.forEach((r) => ws.addEncounter(encounterFromRow(r)));
    }
    if (keys.orderKeys.size > 0) {
      const params: unknown[] = [];
      const rows = await this.read(
        `SELECT * FROM "mpi_result" WHERE ${this.inList('"source_record_id"', ids, params, 'uuid')} ` +
          `AND ${this.inList('"order_key"', [...keys.orderKeys], params)}`,
        params,
      );
      rows.forEach((r) => ws.addResult(resultFromRow(r)));
    }
    ids.forEach((id) => ws.markChildrenLoaded(id));
  }

  // ---- flush ---------------------------------------------------------------------------

  /**
   * Writes the working set and the message statuses in one transaction. Throws
   * {@link ConcurrentUpdateError} (nothing written) when another writer changed a person or a
   * record since the prefetch, or a message is no longer pending.
   */
  async flush(
    ws: WorkingSet,
    statuses: MessageStatusUpdate[],
    now: Date,
    deliveries: readonly DeliveryRow[] = [],
  ): Promise<void> {
    const writes = this.plan(ws, statuses, now, deliveries);
    if (this.dialect === 'postgres') {
      await this.flushPg(writes);
    } else {
      this.flushSqlite(writes);
    }
  }

  private plan(
    ws: WorkingSet,
    statuses: MessageStatusUpdate[],
    now: Date,
    deliveries: readonly DeliveryRow[],
  ): Write[] {
    const pick = <T>(ids: Set<string>, map: Map<string, T>) => [...ids].map((id) => map.get(id)!);
    const persons = (set: Set<string>) => pick(set, ws.persons).map(personToRow);
    const records = (set: Set<string>) => pick(set, ws.records).map(recordToRow);
    const moves = resolveMoves(ws.moves.map((m) => ({ ...m })));
    const identifierRows = [...ws.dirtyIdentifiers].flatMap((id) =>
      ws.records.get(id)!.identifiers.map((i) => ({ source_record_id: id, ...i })),
    );
    return [
      { table: 'mpi_person', kind: 'insert', cols: PERSON_COLS, rows: persons(ws.newPersons) },
      {
        table: 'mpi_person',
        kind: 'update',
        cols: PERSON_COLS,
        rows: persons(ws.dirtyPersons),
        key: 'euid',
        versioned: true,
      },
      {
        table: 'mpi_source_record',
        kind: 'insert',
        cols: RECORD_COLS,
        rows: records(ws.newRecords),
      },
      {
        table: 'mpi_source_record',
        kind: 'update',
        cols: RECORD_COLS,
        rows: records(ws.dirtyRecords),
        key: 'id',
        versioned: true,
      },
      {
        table: 'mpi_identifier',
        kind: 'delete-identifiers',
        cols: [],
        rows: [...ws.dirtyIdentifiers].filter((id) => !ws.newRecords.has(id)).map((id) => ({ id })),
      },
      { table: 'mpi_identifier', kind: 'insert', cols: IDENTIFIER_COLS, rows: identifierRows },
      // Moves are resolved first (each source to where it ends), so their order no longer matters.
      {
        table: 'mpi_block',
        kind: 'delete-blocks',
        cols: [],
        rows: [...ws.blocks.keys()].filter((id) => !ws.newRecords.has(id)).map((id) => ({ id })),
      },
      {
        table: 'mpi_block',
        kind: 'insert',
        cols: BLOCK_COLS,
        rows: [...ws.blocks].flatMap(([id, keys]) =>
          [...new Set(keys)].map((key) => ({ key, source_record_id: id })),
        ),
      },
      {
        table: 'mpi_duplicate_task',
        kind: 'insert',
        cols: TASK_COLS,
        ignoreConflicts: true,
        rows: ws.tasks.map((t) => ({
          id: t.id,
          pair_key: t.pairKey,
          left_record_id: t.leftRecordId,
          right_record_id: t.rightRecordId,
          left_euid: t.leftEuid,
          right_euid: t.rightEuid,
          score: t.score,
          breakdown: t.breakdown,
          facility: t.facility,
          status: t.status,
          message_id: t.messageId,
          created_at: t.createdAt,
          updated_at: t.createdAt,
        })),
      },
      {
        table: 'mpi_duplicate_task',
        kind: 'task-decision',
        cols: DECISION_COLS,
        rows: ws.taskDecisions.map((d) => ({
          id: d.id,
          status: d.status,
          decided_by: d.decidedBy,
          decision_reason: d.reason,
          decided_at: d.decidedAt,
        })),
      },
      { table: 'mpi_encounter', kind: 'move', cols: [], rows: moves },
      { table: 'mpi_result', kind: 'move', cols: [], rows: moves },
      {
        table: 'mpi_encounter',
        kind: 'insert',
        cols: ENCOUNTER_COLS,
        rows: pick(ws.newEncounters, ws.encounters).map(encounterToRow),
      },
      {
        table: 'mpi_encounter',
        kind: 'update',
        cols: ENCOUNTER_COLS,
        rows: pick(ws.dirtyEncounters, ws.encounters).map(encounterToRow),
        key: 'id',
      },
      {
        table: 'mpi_result',
        kind: 'insert',
        cols: RESULT_COLS,
        rows: pick(ws.newResults, ws.results).map(resultToRow),
      },
      {
        table: 'mpi_result',
        kind: 'update',
        cols: RESULT_COLS,
        rows: pick(ws.dirtyResults, ws.results).map(resultToRow),
        key: 'id',
      },
      {
        table: 'mpi_event',
        kind: 'insert',
        cols: EVENT_COLS,
        rows: ws.events.map((e) => ({
          type: e.type,
          euid: e.euid,
          message_id: e.messageId,
          payload: e.payload,
          created_at: e.createdAt,
        })),
      },
      {
        table: 'mpi_history',
        kind: 'insert',
        cols: HISTORY_COLS,
        rows: ws.history.map((h) => ({
          id: h.id,
          kind: h.kind,
          survivor_euid: h.survivorEuid,
          subject_euid: h.subjectEuid,
          source_record_id: h.sourceRecordId,
          message_id: h.messageId,
          actor: h.actor,
          reason: h.reason,
          before: h.before,
          created_at: h.createdAt,
        })),
      },
      {
        // Routed deliveries: a (destination, dedupe key) already there is skipped, so a message
        // applied again (reprocess) never delivers twice.
        table: 'delivery',
        kind: 'insert',
        cols: DELIVERY_COLS,
        ignoreConflicts: true,
        rows: deliveries.map((d) => ({
          destination: d.destination,
          route: d.route,
          lane: d.lane,
          kind: d.kind,
          message_id: d.messageId,
          event_type: d.eventType,
          event_key: d.eventKey,
          euid: d.euid,
          payload: d.payload,
          dedupe_key: d.dedupeKey,
          status: 'pending',
          attempts: 0,
          redeliveries: 0,
          created_at: now,
          next_attempt_at: now,
          updated_at: now,
        })),
      },
      {
        table: 'message',
        kind: 'status',
        cols: STATUS_COLS,
        rows: statuses.map((s) => ({
          id: s.id,
          status: s.status,
          error_code: s.errorCode,
          error_reason: s.errorReason,
          held: s.held,
          processed_at: now,
        })),
      },
    ].filter((w) => w.rows.length > 0) as Write[];
  }

  private async flushPg(writes: Write[]): Promise<void> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query({ text: 'BEGIN' });
      for (const w of writes) {
        const { sql, params } = pgStatement(w);
        // Inserts and updates by primary key have one right plan whatever the statistics:
        // they run as named statements (parsed and planned once per connection).
        const res = PLAN_STABLE.has(w.kind)
          ? await queryPrepared(client, sql, params)
          : await client.query({ text: sql, values: params });
        if (mustMatch(w) && res.rowCount !== w.rows.length) {
          throw new ConcurrentUpdateError(
            `${w.table}: ${w.rows.length - (res.rowCount ?? 0)} row(s) changed by another writer`,
          );
        }
      }
      await client.query({ text: 'COMMIT' });
    } catch (err) {
      await client.query({ text: 'ROLLBACK' }).catch(() => {
        broken = true;
      });
      if (isUniqueViolation(err)) {
        throw new ConcurrentUpdateError(`a row was created by another writer`);
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  private flushSqlite(writes: Write[]): void {
    const db = this.sqlite;
    const run = db.transaction(() => {
      for (const w of writes) {
        const { sql, rowParams } = sqliteStatement(w);
        const stmt = db.prepare(sql);
        for (const row of w.rows) {
          const changes = stmt.run(...rowParams(row)).changes;
          if (mustMatch(w) && changes !== 1) {
            throw new ConcurrentUpdateError(`${w.table}: row changed by another writer`);
          }
        }
      }
    });
    try {
      run.immediate();
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new ConcurrentUpdateError(`a row was created by another writer`);
      }
      throw err;
    }
  }
}

// ---- statements --------------------------------------------------------------------------

/** Writes that must touch every row they name (else another writer got there first). */
function mustMatch(w: Write): boolean {
  return w.versioned === true || w.kind === 'status' || w.kind === 'task-decision';
}

function recordset(cols: Col[]): string {
  return `jsonb_to_recordset($1::jsonb) AS x(${cols.map((c) => `"${c.name}" ${PG_TYPES[c.type]}`).join(', ')})`;
}

/**
 * The updated rows' primary keys again as an array (`$2`). `jsonb_to_recordset` is always
 * estimated at 100 rows, so without it the planner joins a small or never-analyzed table by a
 * sequential scan and a hash; `key = ANY($2)` on the primary key is estimated from the unique
 * index, and the rows are fetched through it.
 */
function byKeys(key: string): string {
  return ` AND t."${key}" = ANY($2::uuid[])`;
}

function pgStatement(w: Write): { sql: string; params: unknown[] } {
  const names = w.cols.map((c) => `"${c.name}"`).join(', ');
  switch (w.kind) {
    case 'insert':
      return {
        sql:
          `INSERT INTO "${w.table}" (${names}) SELECT ${names} FROM ${recordset(w.cols)}` +
          (w.ignoreConflicts ? ' ON CONFLICT DO NOTHING' : ''),
        params: [JSON.stringify(w.rows)],
      };
    case 'update': {
      const set = w.cols
        .filter((c) => c.name !== w.key)
        .map((c) =>
          c.name === 'version' ? `"version" = x."version" + 1` : `"${c.name}" = x."${c.name}"`,
        )
        .join(', ');
      const check = w.versioned ? ` AND t."version" = x."version"` : '';
      return {
        sql: `UPDATE "${w.table}" t SET ${set} FROM ${recordset(w.cols)} WHERE t."${w.key}" = x."${w.key}"${check}${byKeys(w.key!)}`,
        params: [JSON.stringify(w.rows), w.rows.map((r) => r[w.key!])],
      };
    }
    case 'delete-identifiers':
    case 'delete-blocks':
      return {
        sql: `DELETE FROM "${w.table}" WHERE "source_record_id" = ANY($1::uuid[])`,
        params: [w.rows.map((r) => r.id)],
      };
    case 'move':
      return {
        sql:
          `UPDATE "${w.table}" t SET "source_record_id" = x."toRecordId" FROM ${recordset(MOVE_COLS)} ` +
          `WHERE t."source_record_id" = x."fromRecordId"`,
        params: [JSON.stringify(w.rows)],
      };
    case 'task-decision':
      return {
        sql:
          `UPDATE "mpi_duplicate_task" t SET "status" = x."status", "decided_by" = x."decided_by", ` +
          `"decision_reason" = x."decision_reason", "decided_at" = x."decided_at", "updated_at" = x."decided_at" ` +
          `FROM ${recordset(w.cols)} WHERE t."id" = x."id" AND t."status" IN ('open', 'deferred')${byKeys('id')}`,
        params: [JSON.stringify(w.rows), w.rows.map((r) => r.id)],
      };
    case 'status':
      return {
        sql:
          `UPDATE "message" t SET "status" = x."status", "error_code" = x."error_code", ` +
          `"error_reason" = x."error_reason", "held" = x."held", "processed_at" = x."processed_at", ` +
          `"updated_at" = now() FROM ${recordset(w.cols)} WHERE t."id" = x."id" AND t."status" = 'received'${byKeys('id')}`,
        params: [JSON.stringify(w.rows), w.rows.map((r) => r.id)],
      };
  }
}

/** Write kinds whose statements join on a primary key or only insert (see flushPg). */
const PLAN_STABLE = new Set<Write['kind']>(['insert', 'update', 'status', 'task-decision']);

const MOVE_COLS: Col[] = [
  { name: 'fromRecordId', type: 'uuid' },
  { name: 'toRecordId', type: 'uuid' },
];

/** Maps each moved-from record to where its children end after every move of the batch. */
function resolveMoves(rows: Row[]): Row[] {
  const next = new Map<string, string>();
  for (const r of rows) {
    next.set(String(r.fromRecordId), String(r.toRecordId));
  }
  const out: Row[] = [];
  for (const from of next.keys()) {
    let to = next.get(from)!;
    for (let i = 0; i < 64 && next.has(to) && next.get(to) !== from; i++) {
      to = next.get(to)!;
    }
    out.push({ fromRecordId: from, toRecordId: to });
  }
  return out;
}

function sqliteStatement(w: Write): { sql: string; rowParams: (row: Row) => unknown[] } {
  const values = (row: Row, list: Col[]) => list.map((c) => sqliteValue(c.type, row[c.name]));
  switch (w.kind) {
    case 'insert':
      return {
        sql: `INSERT ${w.ignoreConflicts ? 'OR IGNORE ' : ''}INTO "${w.table}" (${w.cols.map((c) => `"${c.name}"`).join(', ')}) VALUES (${w.cols.map(() => '?').join(', ')})`,
        rowParams: (row) => values(row, w.cols),
      };
    case 'update': {
      const rest = w.cols.filter((c) => c.name !== w.key);
      const key = w.cols.find((c) => c.name === w.key)!;
      const set = rest
        .map((c) => (c.name === 'version' ? `"version" = ? + 1` : `"${c.name}" = ?`))
        .join(', ');
      const check = w.versioned ? ` AND "version" = ?` : '';
      return {
        sql: `UPDATE "${w.table}" SET ${set} WHERE "${w.key}" = ?${check}`,
        rowParams: (row) => [
          ...values(row, rest),
          sqliteValue(key.type, row[key.name]),
          ...(w.versioned ? [row.version] : []),
        ],
      };
    }
    case 'delete-identifiers':
    case 'delete-blocks':
      return {
        sql: `DELETE FROM "${w.table}" WHERE "source_record_id" = ?`,
        rowParams: (row) => [row.id],
      };
    case 'move':
      return {
        sql: `UPDATE "${w.table}" SET "source_record_id" = ? WHERE "source_record_id" = ?`,
        rowParams: (row) => [row.toRecordId, row.fromRecordId],
      };
    case 'task-decision':
      return {
        sql:
          `UPDATE "mpi_duplicate_task" SET "status" = ?, "decided_by" = ?, "decision_reason" = ?, ` +
          `"decided_at" = ?, "updated_at" = ? WHERE "id" = ? AND "status" IN ('open', 'deferred')`,
        rowParams: (row) => [
          row.status,
          row.decided_by,
          row.decision_reason,
          toSqliteTimestamp(row.decided_at as Date),
          toSqliteTimestamp(row.decided_at as Date),
          row.id,
        ],
      };
    case 'status':
      return {
        sql:
          `UPDATE "message" SET "status" = ?, "error_code" = ?, "error_reason" = ?, "held" = ?, ` +
          `"processed_at" = ?, "updated_at" = ? WHERE "id" = ? AND "status" = 'received'`,
        rowParams: (row) => [
          row.status,
          row.error_code,
          row.error_reason,
          row.held ? 1 : 0,
          toSqliteTimestamp(row.processed_at as Date),
          toSqliteTimestamp(row.processed_at as Date),
          row.id,
        ],
      };
  }
}

function sqliteValue(type: ColType, v: unknown): unknown {
  if (v === undefined || v === null) {
    return null;
  }
  switch (type) {
    case 'json':
      return JSON.stringify(v);
    case 'time':
      return toSqliteTimestamp(v as Date);
    case 'bool':
      return v ? 1 : 0;
    case 'bigint':
    case 'int':
    case 'float':
    case 'text':
    case 'uuid':
      return v;
  }
}

function sqliteParam(v: unknown): unknown {
  return typeof v === 'boolean' ? (v ? 1 : 0) : v;
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code === '23505';
}

// ---- row mapping -------------------------------------------------------------------------

function personFromRow(r: Row): PersonRow {
  return {
    euid: String(r.euid),
    status: r.status as PersonRow['status'],
    mergedInto: (r.merged_into as string | null) ?? null,
    golden: fromJson(r.golden),
    provenance: fromJson(r.provenance),
    version: Number(r.version),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function personToRow(p: PersonRow): Row {
  const name = p.golden.name;
  return {
    euid: p.euid,
    status: p.status,
    merged_into: p.mergedInto,
    golden: p.golden,
    provenance: p.provenance,
    family_name: name?.family?.toUpperCase() ?? '',
    given_name: name?.given?.toUpperCase() ?? '',
    birth_date: p.golden.birthDate?.value ?? '',
    sex: p.golden.sex ?? '',
    version: p.version,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

function recordFromRow(r: Row): SourceRecordRow {
  return {
    id: String(r.id),
    authority: String(r.authority),
    mrn: String(r.mrn),
    personEuid: String(r.person_euid),
    status: r.status as SourceRecordRow['status'],
    mergedInto: (r.merged_into as string | null) ?? null,
    data: fromJson(r.data),
    dataTime: Number(r.data_time),
    lastMessageId: (r.last_message_id as string | null) ?? null,
    version: Number(r.version),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    identifiers: [],
  };
}

function recordToRow(r: SourceRecordRow): Row {
  return {
    id: r.id,
    authority: r.authority,
    mrn: r.mrn,
    person_euid: r.personEuid,
    status: r.status,
    merged_into: r.mergedInto,
    data: r.data,
    data_time: r.dataTime,
    last_message_id: r.lastMessageId,
    version: r.version,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

function identifierFromRow(r: Row): IdentifierRow {
  return {
    authority: String(r.authority),
    value: String(r.value),
    type: String(r.type),
    retired: r.retired === true || r.retired === 1,
  };
}

function encounterFromRow(r: Row): EncounterRow {
  return {
    id: String(r.id),
    originRecordId: String(r.origin_record_id),
    visitKey: String(r.visit_key),
    sourceRecordId: String(r.source_record_id),
    status: r.status as EncounterRow['status'],
    data: fromJson(r.data),
    dataTime: Number(r.data_time),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function encounterToRow(e: EncounterRow): Row {
  return {
    id: e.id,
    origin_record_id: e.originRecordId,
    visit_key: e.visitKey,
    source_record_id: e.sourceRecordId,
    status: e.status,
    data: e.data,
    data_time: e.dataTime,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
  };
}

function resultFromRow(r: Row): ResultRow {
  return {
    id: String(r.id),
    originRecordId: String(r.origin_record_id),
    orderKey: String(r.order_key),
    sourceRecordId: String(r.source_record_id),
    status: String(r.status),
    data: fromJson(r.data),
    dataTime: Number(r.data_time),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function resultToRow(r: ResultRow): Row {
  return {
    id: r.id,
    origin_record_id: r.originRecordId,
    order_key: r.orderKey,
    source_record_id: r.sourceRecordId,
    status: r.status,
    data: r.data,
    data_time: r.dataTime,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}
