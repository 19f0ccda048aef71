import type BetterSqlite3 from 'better-sqlite3';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { dialectOf, fromJson, toSqliteTimestamp, type StoreDialect } from '@engine/store';
import {
  blockingKeys,
  compiledOf,
  fromPatientRecord,
  PairScorer,
  prepareRecord,
  resolveMatchParams,
  scorePair,
  type CompiledParams,
  type MatchParams,
  type PreparedRecord,
} from './matching';
import type { PatientRecord } from './model';
import { MAX_CANDIDATES_PER_BLOCK } from './mpi-store';
import { pairKey } from './rows';

export interface DedupeOptions {
  /** Records per step (default 1,000). */
  chunkSize?: number;
  /** Rewrite every record's blocking keys first (after a change of blocking rules or identity). */
  reindex?: boolean;
  /** Called after each step. */
  onProgress?: (p: DedupeProgress) => void;
}

export interface DedupeProgress {
  records: number;
  total: number;
  candidatePairs: number;
  /** Pairs at or above the auto-link threshold in different persons (opened as tasks). */
  autoLinkPairs: number;
  reviewPairs: number;
  /** Tasks actually opened (pairs already on the worklist or decided are not reopened). */
  tasksOpened: number;
  elapsedMs: number;
}

type Row = Record<string, unknown>;

/** Below every UUID: where an id-ordered scan starts. */
const FIRST_ID = '00000000-0000-0000-0000-000000000000';

interface Rec {
  id: string;
  authority: string;
  personEuid: string;
  data: PatientRecord;
}

/**
 * Scans the whole index for duplicates: every active source record against the records sharing
 * a blocking key with it, each pair once, and opens a worklist task for every pair of records of
 * different persons that scores at or above the review threshold (pairs above the auto-link
 * threshold too: a bulk scan links nothing by itself). A pair already on the worklist — open,
 * decided or marked not-duplicate — is never reopened. Works in steps of `chunkSize` records in
 * id order, so memory stays flat whatever the size of the index.
 */
export class DedupeScanner {
  private readonly dialect: StoreDialect;
  private readonly compiled: CompiledParams;
  private readonly scorer: PairScorer;

  constructor(
    private readonly dataSource: DataSource,
    params: MatchParams | CompiledParams = resolveMatchParams(),
  ) {
    this.dialect = dialectOf(dataSource);
    this.compiled = compiledOf(params);
    this.scorer = new PairScorer(this.compiled);
  }

  private get sqlite(): BetterSqlite3.Database {
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database })
      .databaseConnection;
  }

  private async exec(sql: string): Promise<void> {
    if (this.dialect === 'postgres') {
      await this.dataSource.query(sql);
    } else {
      this.sqlite.prepare(sql).run();
    }
  }

  private async read(sql: string, params: unknown[]): Promise<Row[]> {
    if (this.dialect === 'postgres') {
      return this.dataSource.query<Row[]>(sql, params);
    }
    return this.sqlite.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as Row[];
  }

  async run(options: DedupeOptions = {}): Promise<DedupeProgress> {
    const chunk = options.chunkSize ?? 1000;
    const started = Date.now();
    const [{ n }] = await this.read(
      `SELECT count(*) AS n FROM "mpi_source_record" WHERE "status" = 'active'`,
      [],
    );
    const progress: DedupeProgress = {
      records: 0,
      total: Number(n),
      candidatePairs: 0,
      autoLinkPairs: 0,
      reviewPairs: 0,
      tasksOpened: 0,
      elapsedMs: 0,
    };
    if (options.reindex) {
      await this.reindex(chunk);
    }
    let after = FIRST_ID;
    for (;;) {
      const rows = await this.read(
        `SELECT "id", "authority", "person_euid", "data" FROM "mpi_source_record" ` +
          `WHERE "status" = 'active' AND "id" > $1 ORDER BY "id" LIMIT $2`,
        [after, chunk],
      );
      if (rows.length === 0) {
        break;
      }
      const recs = rows.map(toRec);
      after = recs[recs.length - 1].id;
      await this.step(recs, progress);
      progress.records += recs.length;
      progress.elapsedMs = Date.now() - started;
      options.onProgress?.({ ...progress });
    }
    progress.elapsedMs = Date.now() - started;
    return progress;
  }

  private async step(recs: Rec[], progress: DedupeProgress): Promise<void> {
    const prepared = new Map<string, PreparedRecord>();
    const prep = (r: Rec) => {
      let p = prepared.get(r.id);
      if (!p) {
        p = prepareRecord(fromPatientRecord(r.data, r.id));
        prepared.set(r.id, p);
      }
      return p;
    };
    const keysOf = new Map<string, string[]>();
    const allKeys = new Set<string>();
    for (const r of recs) {
      const keys = blockingKeys(prep(r));
      keysOf.set(r.id, keys);
      keys.forEach((k) => allKeys.add(k));
    }
    const byKey = await this.candidates([...allKeys], recs);
    const tasks: Row[] = [];
    const now = new Date();
    for (const r of recs) {
      const seen = new Set<string>();
      const me = prep(r);
      /** The best-scoring record of each other person: one task per pair of persons. */
      const best = new Map<string, { c: Rec; score: number; auto: boolean }>();
      for (const k of keysOf.get(r.id) ?? []) {
        for (const c of byKey.get(k) ?? []) {
          // Each pair once: from its record with the larger id.
          if (c.id >= r.id || c.personEuid === r.personEuid || seen.has(c.id)) {
            continue;
          }
          seen.add(c.id);
          progress.candidatePairs++;
          const { score, decision } = this.scorer.score(me, prep(c));
          if (decision === 'no-match') {
            continue;
          }
          const prev = best.get(c.personEuid);
          if (!prev || score > prev.score) {
            best.set(c.personEuid, { c, score, auto: decision === 'auto-link' });
          }
        }
      }
      for (const { c, auto } of best.values()) {
        if (auto) {
          progress.autoLinkPairs++;
        } else {
          progress.reviewPairs++;
        }
        // Explained in the order it was decided (the name-swap check is not symmetric).
        const explained = scorePair(me, prep(c), this.compiled);
        tasks.push({
          id: uuidv7(),
          pair_key: pairKey(c.id, r.id),
          left_record_id: c.id,
          right_record_id: r.id,
          left_euid: c.personEuid,
          right_euid: r.personEuid,
          score: Math.round(explained.score * 1000) / 1000,
          breakdown: {
            fields: explained.breakdown,
            held: explained.held,
            decision: explained.decision,
            source: 'mpi:dedupe',
          },
          facility: r.authority,
          status: 'open',
          created_at: now,
          updated_at: now,
        });
      }
    }
    progress.tasksOpened += await this.insertTasks(tasks);
  }

  /**
   * Active records of each key (at most MAX_CANDIDATES_PER_BLOCK per key), in two reads: the
   * (key, record id) pairs from the block index alone, then each needed record once. Records
   * above `lastId` (scanned later, from their own side) and those of the step itself (already
   * loaded) are not fetched: a candidate that shares several keys with a step is parsed once.
   */
  private async candidates(keys: string[], step: Rec[]): Promise<Map<string, Rec[]>> {
    const out = new Map<string, Rec[]>();
    if (keys.length === 0) {
      return out;
    }
    let pairs: Row[];
    if (this.dialect === 'postgres') {
      pairs = await this.read(
        `SELECT k."key" AS block_key, b."source_record_id" AS id
         FROM unnest($1::text[]) AS k("key")
         CROSS JOIN LATERAL (SELECT "source_record_id" FROM "mpi_block" WHERE "key" = k."key" LIMIT $2) b`,
        [keys, MAX_CANDIDATES_PER_BLOCK],
      );
    } else {
      const stmt = this.sqlite.prepare(
        `SELECT "key" AS block_key, "source_record_id" AS id FROM "mpi_block" WHERE "key" = ? LIMIT ?`,
      );
      pairs = keys.flatMap((k) => stmt.all(k, MAX_CANDIDATES_PER_BLOCK) as Row[]);
    }
    const lastId = step[step.length - 1].id;
    const known = new Map(step.map((r) => [r.id, r]));
    const wanted = new Set<string>();
    for (const p of pairs) {
      const id = String(p.id);
      if (id < lastId && !known.has(id)) {
        wanted.add(id);
      }
    }
    const ids = [...wanted];
    for (let i = 0; i < ids.length; i += 5000) {
      const slice = ids.slice(i, i + 5000);
      const rows =
        this.dialect === 'postgres'
          ? await this.read(
              `SELECT "id", "authority", "person_euid", "data" FROM "mpi_source_record" ` +
                `WHERE "id" = ANY($1::uuid[]) AND "status" = 'active'`,
              [slice],
            )
          : await this.read(
              `SELECT "id", "authority", "person_euid", "data" FROM "mpi_source_record" ` +
                `WHERE "id" IN (${slice.map(() => '?').join(', ')}) AND "status" = 'active'`,
              slice,
            );
      for (const row of rows) {
        known.set(String(row.id), toRec(row));
      }
    }
    for (const p of pairs) {
      const rec = known.get(String(p.id));
      if (rec) {
        const key = String(p.block_key);
        let list = out.get(key);
        if (!list) {
          list = [];
          out.set(key, list);
        }
        list.push(rec);
      }
    }
    return out;
  }

  private async insertTasks(tasks: Row[]): Promise<number> {
    if (tasks.length === 0) {
      return 0;
    }
    const unique = [...new Map(tasks.map((t) => [t.pair_key, t])).values()];
    const cols = [
      'id',
      'pair_key',
      'left_record_id',
      'right_record_id',
      'left_euid',
      'right_euid',
      'score',
      'breakdown',
      'facility',
      'status',
      'created_at',
      'updated_at',
    ];
    if (this.dialect === 'postgres') {
      const res = await this.dataSource.query<Row[]>(
        `INSERT INTO "mpi_duplicate_task" (${cols.map((c) => `"${c}"`).join(', ')})
         SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM jsonb_to_recordset($1::jsonb) AS x(
           "id" uuid, "pair_key" text, "left_record_id" uuid, "right_record_id" uuid, "left_euid" uuid,
           "right_euid" uuid, "score" float8, "breakdown" jsonb, "facility" text, "status" text,
           "created_at" timestamptz, "updated_at" timestamptz)
         ON CONFLICT DO NOTHING RETURNING "id"`,
        [JSON.stringify(unique)],
      );
      return res.length;
    }
    const stmt = this.sqlite.prepare(
      `INSERT OR IGNORE INTO "mpi_duplicate_task" (${cols.map((c) => `"${c}"`).join(', ')}) ` +
        `VALUES (${cols.map(() => '?').join(', ')})`,
    );
    let inserted = 0;
    this.sqlite.transaction(() => {
      for (const t of unique) {
        inserted += stmt.run(
          ...cols.map((c) => {
            const v = t[c];
            if (v instanceof Date) {
              return toSqliteTimestamp(v);
            }
            return c === 'breakdown' ? JSON.stringify(v) : v;
          }),
        ).changes;
      }
    })();
    return inserted;
  }

  /** Rewrites the blocking keys of every active record (and drops those of inactive ones). */
  private async reindex(chunk: number): Promise<void> {
    await this.exec(
      `DELETE FROM "mpi_block" WHERE "source_record_id" IN (SELECT "id" FROM "mpi_source_record" WHERE "status" <> 'active')`,
    );
    let after = FIRST_ID;
    for (;;) {
      const rows = await this.read(
        `SELECT "id", "authority", "person_euid", "data" FROM "mpi_source_record" ` +
          `WHERE "status" = 'active' AND "id" > $1 ORDER BY "id" LIMIT $2`,
        [after, chunk],
      );
      if (rows.length === 0) {
        return;
      }
      const recs = rows.map(toRec);
      after = recs[recs.length - 1].id;
      const blocks = recs.flatMap((r) =>
        [...new Set(blockingKeys(prepareRecord(fromPatientRecord(r.data, r.id))))].map((key) => ({
          key,
          source_record_id: r.id,
        })),
      );
      const ids = recs.map((r) => r.id);
      if (this.dialect === 'postgres') {
        await this.dataSource.transaction(async (m) => {
          await m.query(`DELETE FROM "mpi_block" WHERE "source_record_id" = ANY($1::uuid[])`, [
            ids,
          ]);
          await m.query(
            `INSERT INTO "mpi_block" ("key", "source_record_id") SELECT "key", "source_record_id" ` +
              `FROM jsonb_to_recordset($1::jsonb) AS x("key" text, "source_record_id" uuid)`,
            [JSON.stringify(blocks)],
          );
        });
      } else {
        const del = this.sqlite.prepare(`DELETE FROM "mpi_block" WHERE "source_record_id" = ?`);
        const ins = this.sqlite.prepare(
          `INSERT OR IGNORE INTO "mpi_block" ("key", "source_record_id") VALUES (?, ?)`,
        );
        this.sqlite.transaction(() => {
          ids.forEach((id) => del.run(id));
          blocks.forEach((b) => ins.run(b.key, b.source_record_id));
        })();
      }
    }
  }
}

function toRec(row: Row): Rec {
  return {
    id: String(row.id),
    authority: String(row.authority),
    personEuid: String(row.person_euid),
    data: fromJson<PatientRecord>(row.data),
  };
}
