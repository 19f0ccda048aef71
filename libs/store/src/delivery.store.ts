import type { DataSource } from 'typeorm';
import { dialectOf, toSqliteTimestamp, type StoreDialect } from './dialect';
import { fromJson, toDate } from './sql-values';
import { pgPool, queryPrepared } from './pg-prepared';

/** A (destination, ordering lane) pair: what a delivery queue job names. */
export interface DeliveryLane {
  destination: string;
  lane: number;
}

/** The stored bytes of an inbound message, as rendering needs them. */
export interface StoredMessageBytes {
  id: string;
  feed: string;
  raw: Buffer;
  receivedAt: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'skipped';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'delivered',
  'dead',
  'skipped',
];

/** One row of `delivery`, as the API and the delivery worker see it. */
export interface Delivery {
  id: string;
  destination: string;
  route: string;
  lane: number;
  kind: 'message' | 'event';
  messageId: string | null;
  eventType: string | null;
  eventKey: string | null;
  euid: string | null;
  payload: Record<string, unknown> | null;
  status: DeliveryStatus;
  attempts: number;
  redeliveries: number;
  lastError: string | null;
  remoteAck: string | null;
  latencyMs: number | null;
  createdAt: Date;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  updatedAt: Date;
}

export interface DeliverySearch {
  destination?: string;
  status?: DeliveryStatus;
  messageId?: string;
  limit?: number;
  /** Id of the last item of the previous page (newest first). */
  cursor?: string;
}

export interface DestinationCounts {
  pending: number;
  delivered: number;
  dead: number;
  skipped: number;
  /** Age of the oldest pending delivery (ms), 0 when nothing waits. */
  lagMs: number;
  /** Pending deliveries waiting for a retry (their last attempt failed). */
  retrying: number;
}

export interface DestinationState {
  paused: boolean;
  changedBy: string;
  reason: string;
  changedAt: Date;
}

type Row = Record<string, unknown>;

/**
 * The `delivery` and `destination_state` tables (PostgreSQL and SQLite). Every state change of
 * a delivery is guarded by its current status, so two workers (or a worker and a replay) can
 * never both move the same row.
 */
export class DeliveryStore {
  readonly dialect: StoreDialect;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectOf(dataSource);
  }

  /**
   * Runs a statement. `hot`: one of the delivery loop's statements, which run thousands of
   * times a minute with one right plan (by key or through a partial index of pending rows):
   * on PostgreSQL it runs as a named statement, planned once per connection (ADR 0009). The
   * API's statements are planned per call, so a filter on a rare status gets its own plan.
   */
  private async query(sql: string, params: unknown[] = [], hot = false): Promise<Row[]> {
    if (this.dialect === 'postgres' && hot) {
      return (await queryPrepared<Row>(pgPool(this.dataSource), sql, params)).rows;
    }
    if (this.dialect === 'postgres') {
      return this.dataSource.query<Row[]>(sql, params);
    }
    // SQLite takes positional `?`: repeat a parameter as often as `$n` occurs.
    const ordered: unknown[] = [];
    const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
      ordered.push(params[Number(n) - 1]);
      return '?';
    });
    return this.dataSource.query<Row[]>(text, ordered);
  }

  /** Runs an UPDATE and returns the rows it changed (RETURNING works on both dialects). */
  private async update(sql: string, params: unknown[], hot = false): Promise<Row[]> {
    const rows = await this.query(sql, params, hot);
    // Through TypeORM, the pg driver returns [rows, count] for UPDATE … RETURNING.
    return Array.isArray(rows[0]) ? (rows[0] as Row[]) : rows;
  }

  private time(d: Date): unknown {
    return this.dialect === 'postgres' ? d : toSqliteTimestamp(d);
  }

  /** The oldest pending deliveries of a lane, in id order (the lane's delivery order). */
  async pendingInLane(destination: string, lane: number, limit: number): Promise<Delivery[]> {
    const rows = await this.query(
      `SELECT * FROM "delivery" WHERE "destination" = $1 AND "lane" = $2 AND "status" = 'pending' ORDER BY "id" LIMIT $3`,
      [destination, lane, limit],
    );
    return rows.map(deliveryFromRow);
  }

  /**
   * Lanes of a destination that wait for a retry (their oldest failed delivery is not due yet):
   * with ordering by patient nothing else of such a lane may go first.
   */
  async blockedLanes(destination: string, now: Date): Promise<Map<number, Date>> {
    const rows = await this.query(
      `SELECT "lane", MIN("next_attempt_at") AS "due" FROM "delivery" WHERE "destination" = $1 AND "status" = 'pending' AND "next_attempt_at" > $2 GROUP BY "lane"`,
      [destination, this.time(now)],
      true,
    );
    return new Map(rows.map((r) => [Number(r.lane), toDate(r.due)]));
  }

  /** The oldest due pending deliveries of a destination (id order), skipping some lanes. */
  async dueDeliveries(
    destination: string,
    now: Date,
    limit: number,
    skipLanes: readonly number[] = [],
  ): Promise<Delivery[]> {
    const lanes = skipLanes.map((l) => Math.trunc(l));
    const n = Math.max(1, Math.trunc(limit));
    const base = `SELECT * FROM "delivery" WHERE "destination" = $1 AND "status" = 'pending' AND "next_attempt_at" <= $2`;
    // PostgreSQL: one statement text whatever the lanes (it is prepared once per connection).
    const rows =
      this.dialect === 'postgres'
        ? await this.query(
            `${base} AND "lane" <> ALL($3::int[]) ORDER BY "id" LIMIT $4`,
            [destination, now, lanes, n],
            true,
          )
        : await this.query(
            `${base}${lanes.length === 0 ? '' : ` AND "lane" NOT IN (${lanes.join(', ')})`} ORDER BY "id" LIMIT ${n}`,
            [destination, this.time(now)],
          );
    return rows.map(deliveryFromRow);
  }

  /** When the next pending delivery of a destination is due (null: nothing pending). */
  async nextDue(destination: string): Promise<Date | null> {
    const [row] = await this.query(
      `SELECT MIN("next_attempt_at") AS "due" FROM "delivery" WHERE "destination" = $1 AND "status" = 'pending'`,
      [destination],
      true,
    );
    return row?.due ? toDate(row.due) : null;
  }

  /** Marks many deliveries delivered in one statement (one commit for a whole batch). */
  async markDeliveredMany(
    items: ReadonlyArray<{ id: string; remoteAck: string; at: Date }>,
  ): Promise<number> {
    if (items.length === 0) {
      return 0;
    }
    if (this.dialect === 'postgres') {
      const rows = await this.update(
        `UPDATE "delivery" d SET "status" = 'delivered', "attempts" = d."attempts" + 1, "remote_ack" = x."ack", "last_error" = NULL, "delivered_at" = x."at", "updated_at" = x."at", "latency_ms" = GREATEST(0, (EXTRACT(EPOCH FROM (x."at" - d."created_at")) * 1000)::int) FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS x("id", "ack", "at") WHERE d."id" = x."id" AND d."status" = 'pending' RETURNING d."id"`,
        [items.map((i) => i.id), items.map((i) => i.remoteAck), items.map((i) => i.at)],
        true,
      );
      return rows.length;
    }
    // SQLite: one statement each (a TypeORM transaction would take in whatever else runs on
    // the single shared connection meanwhile).
    let n = 0;
    for (const i of items) {
      n += (await this.markDelivered(i.id, i.remoteAck, i.at)) ? 1 : 0;
    }
    return n;
  }

  /** Lanes with pending deliveries, and when the first of each is due. */
  async pendingLanes(): Promise<Array<DeliveryLane & { dueAt: Date }>> {
    const rows = await this.query(
      `SELECT "destination", "lane", MIN("next_attempt_at") AS "due" FROM "delivery" WHERE "status" = 'pending' GROUP BY "destination", "lane"`,
    );
    return rows.map((r) => ({
      destination: String(r.destination),
      lane: Number(r.lane),
      dueAt: toDate(r.due),
    }));
  }

  /** The stored messages deliveries need (raw bytes for rendering). */
  async messages(ids: string[]): Promise<Map<string, StoredMessageBytes>> {
    const out = new Map<string, StoredMessageBytes>();
    if (ids.length === 0) {
      return out;
    }
    const select = `SELECT "id", "feed", "raw", "received_at" FROM "message" WHERE "id"`;
    const rows =
      this.dialect === 'postgres'
        ? await this.query(`${select} = ANY($1::uuid[])`, [ids], true)
        : await this.query(`${select} IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`, ids);
    for (const r of rows) {
      out.set(String(r.id), {
        id: String(r.id),
        feed: String(r.feed),
        raw: Buffer.isBuffer(r.raw) ? r.raw : Buffer.from(r.raw as Uint8Array),
        receivedAt: toDate(r.received_at),
      });
    }
    return out;
  }

  async markDelivered(id: string, remoteAck: string, now: Date): Promise<boolean> {
    const latency =
      this.dialect === 'postgres'
        ? `GREATEST(0, (EXTRACT(EPOCH FROM ($3::timestamptz - "created_at")) * 1000)::int)`
        : `MAX(0, CAST(ROUND((julianday($3) - julianday("created_at")) * 86400000) AS INTEGER))`;
    const rows = await this.update(
      `UPDATE "delivery" SET "status" = 'delivered', "attempts" = "attempts" + 1, "remote_ack" = $2, "last_error" = NULL, "delivered_at" = $3, "updated_at" = $3, "latency_ms" = ${latency} WHERE "id" = $1 AND "status" = 'pending' RETURNING "id"`,
      [id, remoteAck, this.time(now)],
      true,
    );
    return rows.length > 0;
  }

  /** A transient failure: try again at `nextAt`. */
  async markRetry(
    id: string,
    error: string,
    remoteAck: string | null,
    nextAt: Date,
    now: Date,
  ): Promise<void> {
    await this.query(
      `UPDATE "delivery" SET "attempts" = "attempts" + 1, "last_error" = $2, "remote_ack" = $3, "next_attempt_at" = $4, "updated_at" = $5 WHERE "id" = $1 AND "status" = 'pending'`,
      [id, error.slice(0, 1000), remoteAck, this.time(nextAt), this.time(now)],
      true,
    );
  }

  /** A permanent failure (or retries exhausted): dead-lettered until replayed. */
  async markDead(
    id: string,
    error: string,
    remoteAck: string | null,
    now: Date,
    countAttempt = true,
  ): Promise<void> {
    await this.query(
      `UPDATE "delivery" SET "status" = 'dead', "attempts" = "attempts" + ${countAttempt ? 1 : 0}, "last_error" = $2, "remote_ack" = $3, "updated_at" = $4 WHERE "id" = $1 AND "status" = 'pending'`,
      [id, error.slice(0, 1000), remoteAck, this.time(now)],
      true,
    );
  }

  /** Nothing to send for this destination's format (e.g. an event HL7 has no message for). */
  async markSkipped(id: string, reason: string, now: Date): Promise<void> {
    await this.query(
      `UPDATE "delivery" SET "status" = 'skipped', "last_error" = $2, "updated_at" = $3 WHERE "id" = $1 AND "status" = 'pending'`,
      [id, reason, this.time(now)],
      true,
    );
  }

  async get(id: string): Promise<Delivery | null> {
    if (!/^\d{1,18}$/.test(id)) {
      return null;
    }
    const [row] = await this.query(`SELECT * FROM "delivery" WHERE "id" = $1`, [id]);
    return row ? deliveryFromRow(row) : null;
  }

  /** Newest first (by id), keyset-paginated. */
  async search(s: DeliverySearch): Promise<{ items: Delivery[]; nextCursor: string | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (s.destination !== undefined) {
      add(`"destination" = ?`, s.destination);
    }
    if (s.status !== undefined) {
      add(`"status" = ?`, s.status);
    }
    if (s.messageId !== undefined) {
      add(`"message_id" = ?`, s.messageId);
    }
    if (s.cursor !== undefined) {
      add(`"id" < ?`, s.cursor);
    }
    const limit = Math.min(Math.max(s.limit ?? 50, 1), 500);
    const rows = await this.query(
      `SELECT * FROM "delivery" ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY "id" DESC LIMIT ${limit + 1}`,
      params,
    );
    const items = rows.slice(0, limit).map(deliveryFromRow);
    return {
      items,
      nextCursor: rows.length > limit ? items[items.length - 1].id : null,
    };
  }

  /**
   * Sets deliveries back to pending for another attempt: dead (and skipped) ones, and with
   * `force` delivered ones too (counted in `redeliveries`). Returns the lanes to wake.
   */
  async replay(
    ids: string[],
    opts: { force?: boolean; now?: Date } = {},
  ): Promise<{ replayed: string[]; lanes: DeliveryLane[] }> {
    const valid = ids.filter((id) => /^\d{1,18}$/.test(id));
    if (valid.length === 0) {
      return { replayed: [], lanes: [] };
    }
    const statuses = opts.force ? `'dead', 'skipped', 'delivered'` : `'dead', 'skipped'`;
    const now = opts.now ?? new Date();
    const marks = valid.map((_, i) => `$${i + 2}`).join(', ');
    const rows = await this.update(
      `UPDATE "delivery" SET "redeliveries" = "redeliveries" + CASE WHEN "status" = 'delivered' THEN 1 ELSE 0 END, "status" = 'pending', "attempts" = 0, "next_attempt_at" = $1, "updated_at" = $1, "delivered_at" = NULL WHERE "id" IN (${marks}) AND "status" IN (${statuses}) RETURNING "id", "destination", "lane"`,
      [this.time(now), ...valid],
    );
    return lanesFrom(rows);
  }

  /** Replays every dead delivery (of one destination, or of all). */
  async replayDead(destination?: string): Promise<{ replayed: string[]; lanes: DeliveryLane[] }> {
    const now = this.time(new Date());
    const rows = await this.update(
      `UPDATE "delivery" SET "status" = 'pending', "attempts" = 0, "next_attempt_at" = $1, "updated_at" = $1 WHERE "status" = 'dead'${destination !== undefined ? ` AND "destination" = $2` : ''} RETURNING "id", "destination", "lane"`,
      destination !== undefined ? [now, destination] : [now],
    );
    return lanesFrom(rows);
  }

  /** Counts by status and lag, per destination that has deliveries. */
  async counts(now = new Date()): Promise<Map<string, DestinationCounts>> {
    const out = new Map<string, DestinationCounts>();
    const get = (d: string) => {
      let c = out.get(d);
      if (!c) {
        c = { pending: 0, delivered: 0, dead: 0, skipped: 0, lagMs: 0, retrying: 0 };
        out.set(d, c);
      }
      return c;
    };
    const rows = await this.query(
      `SELECT "destination", "status", COUNT(*) AS "n" FROM "delivery" GROUP BY "destination", "status"`,
    );
    for (const r of rows) {
      const c = get(String(r.destination));
      const status = String(r.status) as DeliveryStatus;
      if (status in c) {
        c[status] = Number(r.n);
      }
    }
    const pending = await this.query(
      `SELECT "destination", MIN("created_at") AS "oldest", SUM(CASE WHEN "attempts" > 0 THEN 1 ELSE 0 END) AS "retrying" FROM "delivery" WHERE "status" = 'pending' GROUP BY "destination"`,
    );
    for (const r of pending) {
      const c = get(String(r.destination));
      c.lagMs = Math.max(0, now.getTime() - toDate(r.oldest).getTime());
      c.retrying = Number(r.retrying);
    }
    return out;
  }

  async destinationStates(): Promise<Map<string, DestinationState>> {
    const rows = await this.query(`SELECT * FROM "destination_state"`);
    return new Map(
      rows.map((r) => [
        String(r.id),
        {
          paused: r.paused === true || r.paused === 1,
          changedBy: String(r.changed_by),
          reason: String(r.reason),
          changedAt: toDate(r.changed_at),
        },
      ]),
    );
  }

  async setPaused(id: string, paused: boolean, changedBy: string, reason: string): Promise<void> {
    const now = this.time(new Date());
    const flag = this.dialect === 'postgres' ? paused : paused ? 1 : 0;
    await this.query(
      `INSERT INTO "destination_state" ("id", "paused", "changed_by", "reason", "changed_at") VALUES ($1, $2, $3, $4, $5) ON CONFLICT ("id") DO UPDATE SET "paused" = excluded."paused", "changed_by" = excluded."changed_by", "reason" = excluded."reason", "changed_at" = excluded."changed_at"`,
      [id, flag, changedBy, reason, now],
    );
  }
}

function lanesFrom(rows: Row[]): { replayed: string[]; lanes: DeliveryLane[] } {
  const lanes = new Map<string, DeliveryLane>();
  for (const r of rows) {
    const lane = { destination: String(r.destination), lane: Number(r.lane) };
    lanes.set(`${lane.destination}\u0000${lane.lane}`, lane);
  }
  return { replayed: rows.map((r) => String(r.id)), lanes: [...lanes.values()] };
}

function deliveryFromRow(r: Row): Delivery {
  const opt = (v: unknown): string | null =>
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? `${v}` : null;
  return {
    id: String(r.id),
    destination: String(r.destination),
    route: String(r.route),
    lane: Number(r.lane),
    kind: r.kind === 'event' ? 'event' : 'message',
    messageId: opt(r.message_id),
    eventType: opt(r.event_type),
    eventKey: opt(r.event_key),
    euid: opt(r.euid),
    payload: r.payload === null || r.payload === undefined ? null : fromJson(r.payload),
    status: String(r.status) as DeliveryStatus,
    attempts: Number(r.attempts),
    redeliveries: Number(r.redeliveries),
    lastError: opt(r.last_error),
    remoteAck: opt(r.remote_ack),
    latencyMs: r.latency_ms === null || r.latency_ms === undefined ? null : Number(r.latency_ms),
    createdAt: toDate(r.created_at),
    nextAttemptAt: toDate(r.next_attempt_at),
    deliveredAt: r.delivered_at ? toDate(r.delivered_at) : null,
    updatedAt: toDate(r.updated_at),
  };
}
