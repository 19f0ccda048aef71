import type { SurvivorshipConfig } from '@engine/config';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { dialectOf, fromJson, toDate, toSqliteTimestamp, type StoreDialect } from '@engine/store';
import { ConcurrentUpdateError, MpiStore } from './mpi-store';
import {
  decideTask,
  OperationError,
  unmerge,
  type DecisionAction,
  type OperationContext,
  type TaskRef,
} from './operations';
import { maskSsn } from './normalize';
import { lanesOf, type BatchRouter, type DeliveryLane } from './outbox';
import type { WorkingSet } from './working-set';
import type { DuplicateTaskStatus, HistoryRow } from './rows';

export const DUPLICATE_STATUSES: DuplicateTaskStatus[] = [
  'open',
  'merged',
  'linked',
  'not-duplicate',
  'deferred',
];

export interface DuplicateSearch {
  status?: DuplicateTaskStatus;
  /** Assigning authority of the record that raised the task. */
  facility?: string;
  /** Created at or after / before (ISO date or date-time). */
  from?: Date;
  to?: Date;
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string;
}

export interface DuplicateTask {
  id: string;
  pairKey: string;
  leftRecordId: string;
  rightRecordId: string;
  leftEuid: string;
  rightEuid: string;
  score: number;
  breakdown: unknown;
  facility: string;
  status: DuplicateTaskStatus;
  messageId: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  decidedAt: Date | null;
  createdAt: Date;
}

type Row = Record<string, unknown>;

function taskFromRow(r: Row): DuplicateTask {
  return {
    id: String(r.id),
    pairKey: String(r.pair_key),
    leftRecordId: String(r.left_record_id),
    rightRecordId: String(r.right_record_id),
    leftEuid: String(r.left_euid),
    rightEuid: String(r.right_euid),
    score: Number(r.score),
    breakdown: fromJson(r.breakdown),
    facility: String(r.facility),
    status: r.status as DuplicateTaskStatus,
    messageId: (r.message_id as string | null) ?? null,
    decidedBy: (r.decided_by as string | null) ?? null,
    decisionReason: (r.decision_reason as string | null) ?? null,
    decidedAt: r.decided_at == null ? null : toDate(r.decided_at),
    createdAt: toDate(r.created_at),
  };
}

function historyFromRow(r: Row): HistoryRow {
  return {
    id: String(r.id),
    kind: r.kind as HistoryRow['kind'],
    survivorEuid: (r.survivor_euid as string | null) ?? null,
    subjectEuid: (r.subject_euid as string | null) ?? null,
    sourceRecordId: (r.source_record_id as string | null) ?? null,
    messageId: (r.message_id as string | null) ?? null,
    actor: String(r.actor),
    reason: String(r.reason),
    before: fromJson<Record<string, unknown>>(r.before),
    createdAt: toDate(r.created_at),
  };
}

const CONFLICT_RETRIES = 5;

/**
 * The duplicate worklist and the operations people decide on it: list and read tasks, apply a
 * decision (merge, link, not-duplicate, defer) and undo a merge, each in one transaction with
 * its history row and domain event. PostgreSQL and SQLite.
 */
export class DuplicateService {
  private readonly dialect: StoreDialect;
  private readonly store: MpiStore;

  constructor(
    private readonly dataSource: DataSource,
    private readonly survivorship: SurvivorshipConfig,
    private readonly routing: {
      /** Routes the decision's events (merge → A40 / patient.merged downstream). */
      router?: BatchRouter;
      /** Called after the commit with the lanes that got deliveries (to enqueue them). */
      onDeliveries?: (lanes: DeliveryLane[]) => void;
    } = {},
  ) {
    this.dialect = dialectOf(dataSource);
    this.store = new MpiStore(dataSource);
  }

  private query(sql: string, params: unknown[]): Promise<Row[]> {
    const text = this.dialect === 'postgres' ? sql : sql.replace(/\$\d+/g, '?');
    return this.dataSource.query<Row[]>(text, params);
  }

  private time(d: Date): unknown {
    return this.dialect === 'postgres' ? d : toSqliteTimestamp(d);
  }

  /** Tasks by score (highest first), with the total matching the filters. */
  async search(s: DuplicateSearch): Promise<{
    items: DuplicateTask[];
    total: number;
    nextCursor: string | null;
  }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (s.status) {
      add(`"status" = ?`, s.status);
    }
    if (s.facility) {
      add(`"facility" = ?`, s.facility);
    }
    if (s.from) {
      add(`"created_at" >= ?`, this.time(s.from));
    }
    if (s.to) {
      add(`"created_at" < ?`, this.time(s.to));
    }
    const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const [{ n }] = await this.query(
      `SELECT count(*) AS n FROM "mpi_duplicate_task" ${filter}`,
      params,
    );
    const pageParams = [...params];
    const pageWhere = [...where];
    if (s.cursor) {
      const c = decodeCursor(s.cursor);
      pageParams.push(c.score, c.id);
      const a = `$${pageParams.length - 1}`;
      const b = `$${pageParams.length}`;
      pageWhere.push(`("score" < ${a} OR ("score" = ${a} AND "id" > ${b}))`);
    }
    const limit = Math.min(Math.max(s.limit ?? 50, 1), 200);
    pageParams.push(limit + 1);
    const rows = await this.query(
      `SELECT * FROM "mpi_duplicate_task" ${pageWhere.length ? `WHERE ${pageWhere.join(' AND ')}` : ''} ` +
        `ORDER BY "score" DESC, "id" LIMIT $${pageParams.length}`,
      pageParams,
    );
    const items = rows.slice(0, limit).map(taskFromRow);
    const last = items[items.length - 1];
    return {
      items,
      total: Number(n),
      nextCursor: rows.length > limit && last ? encodeCursor(last.score, last.id) : null,
    };
  }

  /** Current identifiers of each person's active records (SSNs masked), for list views. */
  async identifiersOf(
    euids: string[],
  ): Promise<Map<string, Array<{ value: string; authority: string; type: string }>>> {
    const out = new Map<string, Array<{ value: string; authority: string; type: string }>>(
      euids.map((e) => [e, []]),
    );
    if (euids.length === 0) {
      return out;
    }
    const marks = euids.map((_, i) => `$${i + 1}`).join(', ');
    const rows = await this.query(
      `SELECT r."person_euid", i."value", i."authority", i."type" FROM "mpi_identifier" i ` +
        `JOIN "mpi_source_record" r ON r."id" = i."source_record_id" ` +
        `WHERE r."person_euid" IN (${marks}) AND r."status" = 'active' AND NOT i."retired" ` +
        `ORDER BY r."person_euid", i."authority", i."value"`,
      euids,
    );
    for (const r of rows) {
      const type = String(r.type);
      const value = String(r.value);
      out.get(String(r.person_euid))?.push({
        value: type === 'SS' ? (maskSsn(value) ?? '***') : value,
        authority: String(r.authority),
        type,
      });
    }
    return out;
  }

  async get(id: string): Promise<DuplicateTask | null> {
    const [row] = await this.query(`SELECT * FROM "mpi_duplicate_task" WHERE "id" = $1`, [id]);
    return row ? taskFromRow(row) : null;
  }

  /** Applies a decision; returns the task as decided. Throws OperationError (not-found, conflict, invalid). */
  async decide(
    id: string,
    action: DecisionAction,
    opts: { survivor?: string; reason: string; actor: string },
  ): Promise<DuplicateTask> {
    await this.withRetries(async () => {
      const task = await this.get(id);
      if (!task) {
        throw new OperationError('not-found', 'no such duplicate task');
      }
      const ws = await this.store.prefetchPersons(
        [task.leftEuid, task.rightEuid],
        [task.leftRecordId, task.rightRecordId],
      );
      const ref: TaskRef = task;
      decideTask(this.context(ws, opts), ref, action, opts.survivor);
      await this.flush(ws);
    });
    return (await this.get(id))!;
  }

  /** Undoes the latest merge or link into `euid` not undone yet; returns the history row undone. */
  async unmerge(euid: string, opts: { reason: string; actor: string }): Promise<HistoryRow> {
    let undone: HistoryRow | undefined;
    await this.withRetries(async () => {
      const merge = await this.latestUndoable(euid);
      if (!merge) {
        throw new OperationError('not-found', 'no merge or link into this person to undo');
      }
      const before = merge.before as {
        persons?: Array<{ euid: string }>;
        records?: Array<{ id: string }>;
      };
      const ws = await this.store.prefetchPersons(
        (before.persons ?? []).map((p) => p.euid),
        (before.records ?? []).map((r) => r.id),
      );
      unmerge(this.context(ws, opts), merge);
      await this.flush(ws);
      undone = merge;
    });
    return undone!;
  }

  /** Writes a decision's changes with the deliveries its events route to. */
  private async flush(ws: WorkingSet): Promise<void> {
    const now = new Date();
    const deliveries = this.routing.router?.route([], ws.events, now) ?? [];
    await this.store.flush(ws, [], now, deliveries);
    if (deliveries.length > 0) {
      this.routing.onDeliveries?.(lanesOf(deliveries));
    }
  }

  private async latestUndoable(euid: string): Promise<HistoryRow | undefined> {
    const rows = (
      await this.query(
        `SELECT * FROM "mpi_history" WHERE "survivor_euid" = $1 AND "kind" IN ('merge', 'link', 'unmerge') ORDER BY "created_at" DESC, "id" DESC`,
        [euid],
      )
    ).map(historyFromRow);
    const undoneIds = new Set(
      rows
        .filter((r) => r.kind === 'unmerge')
        .map((r) => String((r.before as { historyId?: string }).historyId)),
    );
    return rows.find((r) => r.kind !== 'unmerge' && !undoneIds.has(r.id));
  }

  private context(
    ws: OperationContext['ws'],
    opts: { reason: string; actor: string },
  ): OperationContext {
    return {
      ws,
      now: new Date(),
      newId: uuidv7,
      actor: opts.actor,
      reason: opts.reason,
      survivorship: this.survivorship,
    };
  }

  private async withRetries(fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        if (!(err instanceof ConcurrentUpdateError) || attempt >= CONFLICT_RETRIES) {
          if (err instanceof ConcurrentUpdateError) {
            throw new OperationError('conflict', 'the persons changed meanwhile; try again');
          }
          throw err;
        }
        await new Promise((r) => setTimeout(r, 10 * attempt));
      }
    }
  }
}

function encodeCursor(score: number, id: string): string {
  return Buffer.from(JSON.stringify([score, id])).toString('base64url');
}

export class DuplicateCursorError extends Error {}

function decodeCursor(cursor: string): { score: number; id: string } {
  try {
    const [score, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [
      number,
      string,
    ];
    if (typeof score !== 'number' || typeof id !== 'string') {
      throw new Error('bad');
    }
    return { score, id };
  } catch {
    throw new DuplicateCursorError('invalid cursor');
  }
}
