/**
 * bench:match — candidate lookup + scoring latency for one incoming record, and the duplicate
 * scan (`mpi:dedupe`), with an MPI of `--persons` synthetic people in PostgreSQL.
 *
 *   npm run bench:match -- [--persons 1000000] [--queries 2000] [--warmup 200] [--seed 1]
 *       [--keep | --reuse URL | --database-url URL] [--skip-dedupe] [--dedupe-chunk 1000]
 *
 * 1. Population: the synthetic generator's (scripts/generate, `buildDataset`: common US names
 *    weighted by rank, nicknames, typos, moves, married names, twins, junior/senior, ~10% of the
 *    people with a duplicate record, a fifth of those at the same authority). A holdout of
 *    `--holdout` records is kept out of the database for the queries: half of them duplicate
 *    records of people who are loaded, half the only record of a person who is not. Of the rest,
 *    the first `--persons` records (every person's first record, then the duplicates) are loaded,
 *    each as its own person: an index before deduplication, as after a bulk import.
 * 2. Preload (a fresh database from createTestDatabase, dropped at the end unless --keep): each
 *    record is what the pipeline makes of the record's latest ADT message (the generator's
 *    `renderAdt`, `parseMessage`, `normalizeMessage`), the golden record comes from the engine's
 *    survivorship, and the `mpi_block` rows are the engine's own
 *    `blockingKeys(prepareRecord(fromPatientRecord(data, id)))`. Set-based inserts (one statement
 *    of four data-modifying CTEs over jsonb_to_recordset / unnest per chunk of `--chunk`
 *    records), with the indexes of the four tables dropped during the load and created again
 *    from their captured definitions afterwards (the schema ends exactly as migrated), then
 *    VACUUM ANALYZE and CHECKPOINT. Progress on stderr; table and index sizes reported.
 * 3. Lookup: for each query record (an A04 as the pipeline receives it, parsed and normalized
 *    before the clock), what the pipeline does for identity on arrival, one record per call,
 *    sequentially, after `--warmup` other records: `collectPrefetch` with the probabilistic
 *    resolver (blocking keys), `MpiStore.prefetch`, `resolver.resolve`. p50/p95/p99/max of the
 *    whole and of each part (keys, database, scoring), candidates per record, time per SQL
 *    statement of the prefetch (MpiStore's reads wrapped at run time; engine code unchanged),
 *    and EXPLAIN (ANALYZE, BUFFERS) of the statements of a median and of the slowest query.
 * 4. Dedupe: `mpi:dedupe` as a child process, exactly the npm script's command (ts-node
 *    --transpile-only -r tsconfig-paths/register scripts/mpi-dedupe.ts) with DATABASE_URL set and
 *    the repository's config/engine.yaml; elapsed, records/s, pairs, tasks, peak RSS (VmHWM of
 *    the child, sampled) and the CPU seconds of the child and of PostgreSQL.
 *
 * `--reuse URL` runs steps 3–4 against a database this bench loaded before with the same
 * `--persons`, `--seed` and `--holdout` (kept with --keep): the population is generated again
 * (deterministic) but not loaded; the worklist (`mpi_duplicate_task`) is emptied before the scan.
 *
 * Prints a summary, then ONE JSON line:
 * {"persons","lookup_p50_ms","lookup_p95_ms","lookup_p99_ms","dedupe_s","dedupe_records_per_sec",
 *  "dedupe_tasks","dedupe_peak_rss_mb","preload_s",…}
 * Needs DATABASE_URL's server to allow CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/test).
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Command } from 'commander';
import { Client } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import {
  blockingKeys,
  collectPrefetch,
  computeGolden,
  definedOnly,
  emptyPrefetch,
  fromPatientRecord,
  MpiStore,
  type NormalizedMessage,
  normalizeMessage,
  type PatientRecord,
  prepareRecord,
  ProbabilisticIdentityResolver,
} from '@engine/mpi';
import { createDataSource } from '@engine/store';
import { createTestDatabase } from '@engine/store/testing';
import { renderAdt, type Trigger } from '../scripts/generate/adt';
import { WINDOW_START_MS } from '../scripts/generate/dates';
import { buildDataset, DEFAULT_OPTIONS } from '../scripts/generate/generate';
import { recordAt, type SourceRecord } from '../scripts/generate/population';
import { Rng } from '../scripts/generate/rng';

const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
/** The repository (where package.json is): dist/bench/ when built, bench/ under ts-node. */
const ROOT = [resolve(__dirname, '..'), resolve(__dirname, '..', '..')].find((d) =>
  existsSync(resolve(d, 'package.json')),
)!;
/** Tables the preload fills (their indexes are dropped during the load, then rebuilt). */
const TABLES = ['mpi_person', 'mpi_source_record', 'mpi_identifier', 'mpi_block'];
const CLK_TCK = 100;
/** Records per person of the generator's default population (10% duplicated persons). */
const RECORDS_PER_PERSON = 1.11;
const SURVIVORSHIP = { default: 'mostRecent' as const, trustedAuthorities: [], fields: {} };
const STAMP = new Date('2024-01-01T00:00:00Z').toISOString();

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const fmt = (n: number): string => n.toLocaleString('en-US');
const mb = (bytes: number): number => Math.round(bytes / 1e6);
const yieldToIo = () => new Promise<void>((r) => setImmediate(r));

type Row = Record<string, unknown>;

/** A full garbage collection now (so the generator's garbage is not collected mid-measurement). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function cpuPressure(): string {
  try {
    return readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0];
  } catch {
    return 'n/a';
  }
}

/** The value at quantile q of a sorted list (nearest rank). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) {
    return 0;
  }
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

interface Dist {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

function dist(values: number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((t, v) => t + v, 0) / Math.max(1, s.length);
  return {
    p50: round(quantile(s, 0.5), 3),
    p95: round(quantile(s, 0.95), 3),
    p99: round(quantile(s, 0.99), 3),
    max: round(s[s.length - 1] ?? 0, 3),
    mean: round(mean, 3),
  };
}

const showDist = (d: Dist, unit = 'ms'): string =>
  `p50 ${d.p50} / p95 ${d.p95} / p99 ${d.p99} / max ${d.max} ${unit} (mean ${d.mean})`;

/* ------------------------------------------------------------------ population */

interface Population {
  /** Records loaded into the MPI, each its own person, in load order. */
  loaded: SourceRecord[];
  /** Query records (not in the database), in query order: warm-up first. */
  queries: Query[];
  /** Loaded duplicate records whose person's first record is loaded too (true pairs ≥ this). */
  loadedDuplicates: number;
  people: number;
  generatorRecords: number;
  seconds: number;
}

interface Query {
  record: SourceRecord;
  /** A duplicate of a loaded person (else the only record of a person not in the database). */
  duplicate: boolean;
  /** authority|mrn of every loaded record of the same person. */
  sameperson: Set<string>;
}

const keyOf = (authorities: string[], r: SourceRecord): string =>
  `${authorities[r.authority]}|${r.mrn}`;

/**
 * The generator's population, sized so that `persons` records remain after the holdout. Records
 * 0…people-1 are every person's first record; the duplicates follow.
 */
function buildPopulation(
  persons: number,
  holdout: number,
  dupShare: number,
  seed: string,
): Population {
  const started = performance.now();
  let people = Math.ceil((persons + holdout) / RECORDS_PER_PERSON);
  for (let attempt = 0; ; attempt++) {
    const ds = buildDataset({ ...DEFAULT_OPTIONS, people, seed });
    const records = ds.plan.records;
    const authorities = ds.options.authorities;
    const rng = new Rng(`bench-match:${seed}`);
    const duplicates = records.filter((r) => r.original !== undefined);
    const multi = new Set(duplicates.map((r) => r.person.id));
    const singles = records.filter((r) => r.original === undefined && !multi.has(r.person.id));
    const wantDup = Math.round(holdout * dupShare);
    const held = new Set<number>();
    const dupQueries = rng.shuffle(duplicates.slice()).slice(0, wantDup);
    const newQueries = rng.shuffle(singles.slice()).slice(0, holdout - dupQueries.length);
    dupQueries.forEach((r) => held.add(r.index));
    newQueries.forEach((r) => held.add(r.index));
    const rest = records.filter((r) => !held.has(r.index));
    if (rest.length < persons) {
      if (attempt >= 3) {
        throw new Error(`the generator gave ${rest.length} records after the holdout`);
      }
      people = Math.ceil(people * (persons / rest.length) * 1.002) + 10;
      continue;
    }
    const loaded = rest.slice(0, persons);
    const loadedKeys = new Set(loaded.map((r) => r.index));
    const byPerson = new Map<string, string[]>();
    let loadedDuplicates = 0;
    for (const r of loaded) {
      const list = byPerson.get(r.person.id);
      if (list) {
        list.push(keyOf(authorities, r));
      } else {
        byPerson.set(r.person.id, [keyOf(authorities, r)]);
      }
      if (r.original && loadedKeys.has(r.original.index)) {
        loadedDuplicates++;
      }
    }
    // Alternate duplicates and new people, so warm-up and measured queries both get each kind.
    const queries: Query[] = [];
    for (let i = 0; i < Math.max(dupQueries.length, newQueries.length); i++) {
      for (const r of [dupQueries[i], newQueries[i]]) {
        if (r !== undefined) {
          const same = new Set(byPerson.get(r.person.id) ?? []);
          queries.push({ record: r, duplicate: same.size > 0, sameperson: same });
        }
      }
    }
    return {
      loaded,
      queries,
      loadedDuplicates,
      people,
      generatorRecords: records.length,
      seconds: (performance.now() - started) / 1000,
    };
  }
}

const AUTHORITIES = DEFAULT_OPTIONS.authorities;

/** The record's ADT message at time `at` (window seconds), as its facility sends it. */
function adtOf(r: SourceRecord, trigger: Trigger, at: number, n: number): string {
  return renderAdt({
    authority: AUTHORITIES[r.authority],
    style: r.authority % 3,
    mrn: r.mrn,
    trigger,
    at,
    controlId: `BM${String(n).padStart(9, '0')}`,
    visit: n + 1,
    demographics: recordAt(r, at),
  });
}

function normalized(text: string): NormalizedMessage {
  const msg = normalizeMessage(parseMessage(text));
  if (!msg.patient?.mrn) {
    throw new Error('a generated message did not normalize to a patient with an MRN');
  }
  return msg;
}

/** What the MPI holds for a loaded record: its latest message, normalized (as apply stores it). */
function loadedData(r: SourceRecord, n: number): { data: PatientRecord; at: number } {
  const at = r.updates.length > 0 ? r.updates[r.updates.length - 1] : r.created;
  const msg = normalized(adtOf(r, at === r.created ? r.trigger : 'A08', at, n));
  return { data: definedOnly(msg.patient!), at };
}

/* ------------------------------------------------------------------ preload */

interface IndexDef {
  table: string;
  name: string;
  /** PRIMARY KEY / UNIQUE constraint (else a plain CREATE [UNIQUE] INDEX). */
  constraint?: string;
  def: string;
}

async function captureIndexes(db: Client): Promise<IndexDef[]> {
  const { rows } = await db.query<{
    tbl: string;
    idx: string;
    def: string;
    con: string | null;
    condef: string | null;
  }>(
    `SELECT c.relname AS tbl, i.relname AS idx, pg_get_indexdef(i.oid) AS def, con.conname AS con,
       pg_get_constraintdef(con.oid) AS condef
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
     LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype IN ('p', 'u')
     WHERE c.relname = ANY($1::text[]) ORDER BY c.relname, i.relname`,
    [TABLES],
  );
  return rows.map((r) =>
    r.con
      ? { table: r.tbl, name: r.idx, constraint: r.con, def: r.condef ?? '' }
      : { table: r.tbl, name: r.idx, def: r.def },
  );
}

const describeIndexes = (defs: IndexDef[]): string =>
  defs
    .map((d) => (d.constraint ? `${d.table}.${d.constraint} ${d.def}` : d.def))
    .sort()
    .join('\n');

interface PreloadStats {
  seconds: number;
  load_s: number;
  index_s: number;
  vacuum_s: number;
  persons_per_sec: number;
  identifiers: number;
  block_rows: number;
}

async function preload(
  url: string,
  pop: Population,
  chunk: number,
  connections: number,
): Promise<PreloadStats> {
  const started = performance.now();
  const admin = new Client({ connectionString: url });
  await admin.connect();
  const clients: Client[] = [];
  try {
    const defs = await captureIndexes(admin);
    log(`  dropping ${defs.length} indexes of ${TABLES.join(', ')} for the load`);
    for (const d of defs) {
      await admin.query(
        d.constraint
          ? `ALTER TABLE "${d.table}" DROP CONSTRAINT "${d.constraint}"`
          : `DROP INDEX "${d.name}"`,
      );
    }
    for (let i = 0; i < connections; i++) {
      const c = new Client({ connectionString: url });
      await c.connect();
      // Bench data: a lost commit on a crash would only mean a rerun.
      await c.query(`SET synchronous_commit = off`);
      clients.push(c);
    }
    const sql = `WITH p AS (
        INSERT INTO "mpi_person" ("euid", "status", "merged_into", "golden", "provenance",
          "family_name", "given_name", "birth_date", "sex", "version", "created_at", "updated_at")
        SELECT x."euid", 'active', NULL, x."golden", x."provenance", x."family_name", x."given_name",
          x."birth_date", x."sex", 0, $6::timestamptz, $6::timestamptz
        FROM jsonb_to_recordset($1::jsonb) AS x("euid" uuid, "golden" jsonb, "provenance" jsonb,
          "family_name" text, "given_name" text, "birth_date" text, "sex" text)
      ), r AS (
        INSERT INTO "mpi_source_record" ("id", "authority", "mrn", "person_euid", "status",
          "merged_into", "data", "data_time", "last_message_id", "version", "created_at", "updated_at")
        SELECT x."id", x."authority", x."mrn", x."person_euid", 'active', NULL, x."data",
          x."data_time", NULL, 0, $6::timestamptz, $6::timestamptz
        FROM jsonb_to_recordset($2::jsonb) AS x("id" uuid, "authority" text, "mrn" text,
          "person_euid" uuid, "data" jsonb, "data_time" bigint)
      ), i AS (
        INSERT INTO "mpi_identifier" ("source_record_id", "authority", "value", "type", "retired")
        SELECT x."source_record_id", x."authority", x."value", x."type", false
        FROM jsonb_to_recordset($3::jsonb) AS x("source_record_id" uuid, "authority" text,
          "value" text, "type" text)
      ), b AS (
        INSERT INTO "mpi_block" ("key", "source_record_id")
        SELECT * FROM unnest($4::text[], $5::uuid[])
      )
      SELECT 1`;
    const n = pop.loaded.length;
    const inflight: Promise<unknown>[] = [];
    let identifiers = 0;
    let blockRows = 0;
    let lastLog = performance.now();
    for (let from = 0, k = 0; from < n; from += chunk, k++) {
      const personRows: Row[] = [];
      const recordRows: Row[] = [];
      const identifierRows: Row[] = [];
      const blockKeys: string[] = [];
      const blockIds: string[] = [];
      const to = Math.min(n, from + chunk);
      for (let i = from; i < to; i++) {
        if ((i - from) % 500 === 499) {
          await yieldToIo(); // let the previous chunk's statement reach the server
        }
        const rec = pop.loaded[i];
        const { data, at } = loadedData(rec, i);
        const euid = uuidv7();
        const id = uuidv7();
        const dataTime = WINDOW_START_MS + at * 1000;
        const { golden, provenance } = computeGolden(
          [{ id, authority: data.authority, mrn: data.mrn ?? '', dataTime, data }],
          SURVIVORSHIP,
        );
        personRows.push({
          euid,
          golden,
          provenance,
          family_name: golden.name?.family?.toUpperCase() ?? '',
          given_name: golden.name?.given?.toUpperCase() ?? '',
          birth_date: golden.birthDate?.value ?? '',
          sex: golden.sex ?? '',
        });
        recordRows.push({
          id,
          authority: data.authority,
          mrn: data.mrn,
          person_euid: euid,
          data,
          data_time: dataTime,
        });
        const seen = new Set<string>();
        for (const ident of data.identifiers) {
          const key = `${ident.authority}\u001f${ident.value}\u001f${ident.type}`;
          if (ident.value && !seen.has(key)) {
            seen.add(key);
            identifierRows.push({
              source_record_id: id,
              authority: ident.authority,
              value: ident.value,
              type: ident.type,
            });
          }
        }
        for (const key of new Set(blockingKeys(prepareRecord(fromPatientRecord(data, id))))) {
          blockKeys.push(key);
          blockIds.push(id);
        }
      }
      identifiers += identifierRows.length;
      blockRows += blockKeys.length;
      if (inflight.length >= connections) {
        await inflight.shift();
      }
      inflight.push(
        clients[k % connections].query(sql, [
          JSON.stringify(personRows),
          JSON.stringify(recordRows),
          JSON.stringify(identifierRows),
          blockKeys,
          blockIds,
          STAMP,
        ]),
      );
      const now = performance.now();
      if (now - lastLog >= 5000 || to === n) {
        const s = (now - started) / 1000;
        log(
          `  ${fmt(to).padStart(10)} persons sent  ${s.toFixed(0).padStart(5)} s  ${fmt(Math.round(to / s)).padStart(7)} persons/s  ${fmt(Math.round(blockRows / s)).padStart(8)} block rows/s`,
        );
        lastLog = now;
      }
    }
    await Promise.all(inflight);
    const loadS = (performance.now() - started) / 1000;
    log(`  loaded in ${loadS.toFixed(1)} s; creating the indexes again`);
    const t1 = performance.now();
    await admin.query(`SET maintenance_work_mem = '1GB'`);
    for (const d of defs) {
      const t = performance.now();
      await admin.query(
        d.constraint ? `ALTER TABLE "${d.table}" ADD CONSTRAINT "${d.constraint}" ${d.def}` : d.def,
      );
      log(`    ${d.name} ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const after = await captureIndexes(admin);
    if (describeIndexes(after) !== describeIndexes(defs)) {
      throw new Error('the indexes after the load differ from the migrated ones');
    }
    const indexS = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    log('  VACUUM ANALYZE, CHECKPOINT');
    for (const t of TABLES) {
      await admin.query(`VACUUM ANALYZE "${t}"`);
    }
    await admin.query('CHECKPOINT');
    const vacuumS = (performance.now() - t2) / 1000;
    const seconds = (performance.now() - started) / 1000;
    return {
      seconds,
      load_s: round(loadS, 1),
      index_s: round(indexS, 1),
      vacuum_s: round(vacuumS, 1),
      persons_per_sec: Math.round(n / seconds),
      identifiers,
      block_rows: blockRows,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await admin.end().catch(() => undefined);
  }
}

interface SizeRow {
  name: string;
  rows: number;
  total_mb: number;
  heap_mb: number;
  indexes: Record<string, number>;
}

async function tableSizes(db: Client): Promise<{ tables: SizeRow[]; database_mb: number }> {
  const tables: SizeRow[] = [];
  for (const t of [...TABLES, 'mpi_duplicate_task']) {
    const { rows } = await db.query<{ total: string; heap: string; est: string }>(
      `SELECT pg_total_relation_size($1::regclass) AS total, pg_table_size($1::regclass) AS heap,
         (SELECT reltuples FROM pg_class WHERE oid = $1::regclass) AS est`,
      [t],
    );
    const { rows: idx } = await db.query<{ name: string; size: string }>(
      `SELECT i.relname AS name, pg_relation_size(i.oid) AS size FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass ORDER BY 1`,
      [t],
    );
    // The worklist is not analyzed after the scan: count it (it is small next to mpi_block).
    const exact =
      t === 'mpi_duplicate_task'
        ? Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${t}"`)).rows[0].n)
        : Math.round(Number(rows[0].est));
    tables.push({
      name: t,
      rows: Math.max(0, exact),
      total_mb: mb(Number(rows[0].total)),
      heap_mb: mb(Number(rows[0].heap)),
      indexes: Object.fromEntries(idx.map((r) => [r.name, mb(Number(r.size))])),
    });
  }
  const { rows } = await db.query<{ size: string }>(
    `SELECT pg_database_size(current_database()) AS size`,
  );
  return { tables, database_mb: mb(Number(rows[0].size)) };
}

/* ------------------------------------------------------------------ CPU */

interface ProcCpu {
  comm: string;
  cpu: number;
}

function readProc(pid: number): ProcCpu | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    return {
      comm: text.slice(text.indexOf('(') + 1, close),
      cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK,
    };
  } catch {
    return undefined;
  }
}

function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: (total - idle - iowait) / CLK_TCK, total: total / CLK_TCK };
}

/**
 * CPU seconds of PostgreSQL processes (and of given pids) between `start` and `stop`, by pid,
 * sampled every `everyMs` so that processes which exit in between (a child's connections) still
 * count up to their last sample.
 */
class CpuMeter {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, ProcCpu>();
  private timer?: NodeJS.Timeout;
  private machine0 = machineCpu();
  private machine1 = machineCpu();
  private self0 = process.cpuUsage();
  private self1 = process.cpuUsage();

  constructor(private readonly watch: () => number[] = () => []) {}

  private sample(initial: boolean): void {
    const watched = new Set(this.watch());
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) {
        continue;
      }
      const pid = Number(name);
      const st = readProc(pid);
      if (st && (st.comm === 'postgres' || watched.has(pid))) {
        if (initial) {
          this.first.set(pid, st.cpu);
        }
        this.last.set(pid, st);
      }
    }
  }

  start(everyMs = 0): void {
    this.machine0 = machineCpu();
    this.self0 = process.cpuUsage();
    this.sample(true);
    if (everyMs > 0) {
      this.timer = setInterval(() => this.sample(false), everyMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
    }
    this.sample(false);
    this.machine1 = machineCpu();
    this.self1 = process.cpuUsage();
  }

  seconds(match: (pid: number, comm: string) => boolean): number {
    let s = 0;
    for (const [pid, st] of this.last) {
      if (match(pid, st.comm)) {
        s += st.cpu - (this.first.get(pid) ?? 0);
      }
    }
    return round(s);
  }

  get self(): number {
    const u = this.self1.user - this.self0.user + this.self1.system - this.self0.system;
    return round(u / 1e6);
  }

  get machineBusy(): { busy_s: number; busy_pct: number } {
    const busy = this.machine1.busy - this.machine0.busy;
    const total = this.machine1.total - this.machine0.total;
    return { busy_s: round(busy), busy_pct: round((100 * busy) / Math.max(0.01, total), 1) };
  }
}

/* ------------------------------------------------------------------ lookup */

type Read = (sql: string, params: unknown[]) => Promise<Row[]>;

/** A short name for each statement shape of MpiStore.prefetch. */
function statementName(sql: string): string {
  const s = sql.replace(/\s+/g, ' ');
  if (s.includes('"mpi_block"')) {
    return 'block candidates';
  }
  if (s.includes('("authority", "mrn") IN')) {
    return 'record by key';
  }
  if (s.includes(`i."type" = 'SS'`)) {
    return 'records by SSN';
  }
  if (s.includes('FROM "mpi_identifier"')) {
    return 'identifiers';
  }
  if (s.includes('FROM "mpi_person"')) {
    return 'persons';
  }
  if (s.includes('FROM "mpi_source_record" WHERE "person_euid"')) {
    return 'records of persons';
  }
  if (s.includes('FROM "mpi_source_record" WHERE "id"')) {
    return 'records by id';
  }
  if (s.includes('FROM "mpi_encounter"')) {
    return 'encounters';
  }
  if (s.includes('FROM "mpi_result"')) {
    return 'results';
  }
  return s.slice(0, 60);
}

interface StatementStat {
  calls: number;
  ms: number;
  rows: number;
  times: number[];
}

/** Wraps the store's private `read` to time each statement (the engine code is not changed). */
class StatementTimer {
  readonly stats = new Map<string, StatementStat>();
  capture?: Array<{ sql: string; params: unknown[] }>;
  enabled = false;

  install(store: MpiStore): void {
    const target = store as unknown as { read: Read };
    const original: Read = target.read.bind(store);
    target.read = async (sql, params) => {
      this.capture?.push({ sql, params });
      if (!this.enabled) {
        return original(sql, params);
      }
      const t0 = performance.now();
      const rows = await original(sql, params);
      const ms = performance.now() - t0;
      const name = statementName(sql);
      const st = this.stats.get(name) ?? { calls: 0, ms: 0, rows: 0, times: [] };
      st.calls++;
      st.ms += ms;
      st.rows += rows.length;
      st.times.push(ms);
      this.stats.set(name, st);
      return rows;
    };
  }
}

interface Sample {
  keys: number;
  db: number;
  score: number;
  total: number;
  blockKeys: number;
  /** Records the block query returned (one row per key and record). */
  blockRows: number;
  /** Active records sharing a key (scored). */
  candidates: number;
  /** Records in the working set (candidates, every record of their persons, …). */
  wsRecords: number;
  duplicate: boolean;
  outcome: 'auto-link' | 'review' | 'none';
  correct?: boolean;
  index: number;
  /** performance.now() at the start. */
  at: number;
}

interface LookupResult {
  samples: Sample[];
  statements: Map<string, StatementStat>;
  cpu: { bench_s: number; postgres_s: number; machine_busy_pct: number; elapsed_s: number };
  /** Garbage collections in this process during the measured interval. */
  gc: {
    count: number;
    total_ms: number;
    max_ms: number;
    slowHit: number;
    slow: number;
    /** Count, total and longest pause by kind (minor = scavenge, major = mark-compact). */
    kinds: Record<string, { count: number; ms: number; max: number }>;
    heapMb: number;
  };
  /** Blocks PostgreSQL found in shared_buffers / read from the OS during the interval. */
  blocks: { hit: number; read: number };
  explain: string[];
}

async function lookup(
  url: string,
  pop: Population,
  warmup: number,
  queries: number,
  db: Client,
): Promise<LookupResult> {
  const ds = createDataSource({ databaseUrl: url, poolSize: 4 });
  await ds.initialize();
  try {
    const store = new MpiStore(ds);
    const resolver = new ProbabilisticIdentityResolver();
    const timer = new StatementTimer();
    timer.install(store);
    const msgs = pop.queries
      .slice(0, warmup + queries)
      .map((q, i) => normalized(adtOf(q.record, q.record.trigger, q.record.created, i)));
    const run = async (i: number): Promise<Sample> => {
      const msg = msgs[i];
      const patient = msg.patient!;
      const t0 = performance.now();
      const keys = emptyPrefetch();
      collectPrefetch(msg, resolver, keys);
      const t1 = performance.now();
      const ws = await store.prefetch(keys);
      const t2 = performance.now();
      const match = resolver.resolve(ws, patient);
      const t3 = performance.now();
      const q = pop.queries[i];
      const blockKeys = [...keys.blockKeys];
      let correct: boolean | undefined;
      if (match?.euid) {
        const joined = [...ws.records.values()].filter((r) => r.personEuid === match.euid);
        correct = joined.some((r) => q.sameperson.has(`${r.authority}|${r.mrn}`));
      }
      return {
        keys: t1 - t0,
        db: t2 - t1,
        score: t3 - t2,
        total: t3 - t0,
        blockKeys: blockKeys.length,
        blockRows: 0,
        candidates: ws.recordsByBlocks(blockKeys).length,
        wsRecords: ws.records.size,
        duplicate: q.duplicate,
        outcome: match?.euid ? 'auto-link' : match?.reviews?.length ? 'review' : 'none',
        correct,
        index: i,
        at: t0,
      };
    };
    fullGc();
    log(`  warm-up: ${warmup} records`);
    for (let i = 0; i < warmup; i++) {
      await run(i);
    }
    log(`  measuring ${queries} records, one at a time`);
    const pgBlocks = async () => {
      const { rows } = await db.query<{ hit: string; read: string }>(
        `SELECT blks_hit AS hit, blks_read AS read FROM pg_stat_database WHERE datname = current_database()`,
      );
      return { hit: Number(rows[0].hit), read: Number(rows[0].read) };
    };
    const blocks0 = await pgBlocks();
    const gcs: Array<{ start: number; end: number; kind: string }> = [];
    const GC_KINDS: Record<number, string> = {
      [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
      [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
      [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
      [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
    };
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
        gcs.push({
          start: e.startTime,
          end: e.startTime + e.duration,
          kind: GC_KINDS[kind] ?? String(kind),
        });
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    const meter = new CpuMeter();
    timer.enabled = true;
    const samples: Sample[] = [];
    meter.start();
    const t0 = performance.now();
    for (let i = warmup; i < warmup + queries; i++) {
      const before = timer.stats.get('block candidates')?.rows ?? 0;
      const s = await run(i);
      s.blockRows = (timer.stats.get('block candidates')?.rows ?? 0) - before;
      samples.push(s);
    }
    const elapsed = (performance.now() - t0) / 1000;
    meter.stop();
    timer.enabled = false;
    observer.disconnect();
    // Backends report their statistics at most once a second.
    await new Promise((r) => setTimeout(r, 1100));
    const blocks1 = await pgBlocks();
    const slowest = [...samples]
      .sort((a, b) => b.total - a.total)
      .slice(0, Math.ceil(samples.length / 50));
    const gcDurations = gcs.map((g) => g.end - g.start);
    const kinds: Record<string, { count: number; ms: number; max: number }> = {};
    for (const g of gcs) {
      const k = (kinds[g.kind] ??= { count: 0, ms: 0, max: 0 });
      k.count++;
      k.ms = round(k.ms + g.end - g.start, 1);
      k.max = round(Math.max(k.max, g.end - g.start), 1);
    }
    const gc = {
      kinds,
      heapMb: mb(process.memoryUsage().heapUsed),
      count: gcs.length,
      total_ms: round(
        gcDurations.reduce((t, d) => t + d, 0),
        1,
      ),
      max_ms: round(Math.max(0, ...gcDurations), 1),
      slow: slowest.length,
      slowHit: slowest.filter((s) => gcs.some((g) => g.start < s.at + s.total && g.end > s.at))
        .length,
    };

    // EXPLAIN of the prefetch statements of a median and of the slowest query (run again).
    const byTotal = [...samples].sort((a, b) => a.total - b.total);
    const explain: string[] = [];
    for (const [label, s] of [
      ['median', byTotal[Math.floor(byTotal.length / 2)]],
      ['slowest', byTotal[byTotal.length - 1]],
    ] as const) {
      timer.capture = [];
      const keys = emptyPrefetch();
      collectPrefetch(msgs[s.index], resolver, keys);
      await store.prefetch(keys);
      const captured = timer.capture;
      timer.capture = undefined;
      explain.push(
        `EXPLAIN (ANALYZE, BUFFERS) of the prefetch of the ${label} query (${s.total.toFixed(2)} ms when measured; ${s.blockKeys} keys, ${s.blockRows} block rows, ${s.candidates} candidates, ${s.wsRecords} records in the working set), run again:`,
      );
      for (const c of captured) {
        const { rows } = await db.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS) ${c.sql}`,
          c.params,
        );
        const plan = rows.map((r) => r['QUERY PLAN']);
        const exec = plan.find((l) => l.startsWith('Execution Time')) ?? '';
        const planning = plan.find((l) => l.startsWith('Planning Time')) ?? '';
        const name = statementName(c.sql);
        if (name === 'block candidates') {
          explain.push(`  -- ${name}:`, ...plan.map((l) => `     ${l}`));
        } else {
          explain.push(`  -- ${name}: ${planning}; ${exec}; ${plan[0].trim()}`);
        }
      }
    }
    return {
      samples,
      statements: timer.stats,
      cpu: {
        bench_s: meter.self,
        postgres_s: meter.seconds((_p, comm) => comm === 'postgres'),
        machine_busy_pct: meter.machineBusy.busy_pct,
        elapsed_s: round(elapsed),
      },
      gc,
      blocks: { hit: blocks1.hit - blocks0.hit, read: blocks1.read - blocks0.read },
      explain,
    };
  } finally {
    await ds.destroy();
  }
}

/* ------------------------------------------------------------------ blocks */

interface BlockStat {
  rule: string;
  rows: number;
  keys: number;
  mean: number;
  max: number;
  /** Keys holding more records than the per-key LIMIT of the candidate query (100). */
  over100: number;
  /** Rows in those keys. */
  rowsOver100: number;
}

async function blockStats(db: Client): Promise<BlockStat[]> {
  const { rows } = await db.query<Record<string, string>>(
    `SELECT rule, sum(n) AS rows, count(*) AS keys, max(n) AS max,
       count(*) FILTER (WHERE n > 100) AS over, coalesce(sum(n) FILTER (WHERE n > 100), 0) AS rows_over
     FROM (SELECT split_part("key", ':', 1) AS rule, count(*) AS n FROM "mpi_block" GROUP BY "key") k
     GROUP BY rule ORDER BY rule`,
  );
  return rows.map((r) => ({
    rule: r.rule,
    rows: Number(r.rows),
    keys: Number(r.keys),
    mean: round(Number(r.rows) / Number(r.keys)),
    max: Number(r.max),
    over100: Number(r.over),
    rowsOver100: Number(r.rows_over),
  }));
}

/* ------------------------------------------------------------------ dedupe */

interface DedupeResult {
  wall_s: number;
  report: Record<string, number>;
  peak_rss_mb: number;
  child_cpu_s: number;
  postgres_cpu_s: number;
  machine_busy_pct: number;
  pressure_after: string;
}

function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs `npm run mpi:dedupe`'s command as a child process and samples its memory and CPU. */
async function dedupe(url: string, chunk: number): Promise<DedupeResult> {
  const tsNode = resolve(ROOT, 'node_modules', '.bin', 'ts-node');
  const args = ['--transpile-only', '-r', 'tsconfig-paths/register', 'scripts/mpi-dedupe.ts'];
  args.push('--chunk', String(chunk));
  log(`  ${tsNode} ${args.join(' ')}  (DATABASE_URL=<bench db>, HL7_CONFIG=config/engine.yaml)`);
  const child = spawn(tsNode, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: url,
      HL7_CONFIG: resolve(ROOT, 'config', 'engine.yaml'),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid ?? 0;
  const meter = new CpuMeter(() => [pid]);
  meter.start(500);
  let peak = 0;
  const mem = setInterval(() => {
    peak = Math.max(peak, vmHwm(pid));
  }, 250);
  let stdout = '';
  let errTail = '';
  let lastShown = 0;
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    const text = b.toString();
    errTail = (errTail + text).slice(-4000);
    const now = Date.now();
    if (now - lastShown >= 15_000) {
      const line = text.trim().split('\n').pop() ?? '';
      log(`  dedupe: ${line}`);
      lastShown = now;
    }
  });
  const t0 = performance.now();
  const code = await new Promise<number>((done) => child.on('close', (c) => done(c ?? -1)));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(mem);
  meter.stop();
  if (code !== 0) {
    throw new Error(`mpi:dedupe exited with ${code}: ${errTail}`);
  }
  log(`  dedupe: ${errTail.trim().split('\n').pop() ?? ''}`);
  const last = stdout.trim().split('\n').pop() ?? '{}';
  return {
    wall_s: round(wall, 1),
    report: JSON.parse(last) as Record<string, number>,
    peak_rss_mb: mb(peak),
    child_cpu_s: meter.seconds((p) => p === pid),
    postgres_cpu_s: meter.seconds((_p, comm) => comm === 'postgres'),
    machine_busy_pct: meter.machineBusy.busy_pct,
    pressure_after: cpuPressure(),
  };
}

/* ------------------------------------------------------------------ main */

interface Options {
  persons: string;
  queries: string;
  warmup: string;
  holdout: string;
  dupShare: string;
  seed: string;
  chunk: string;
  connections: string;
  databaseUrl?: string;
  reuse?: string;
  keep: boolean;
  skipDedupe: boolean;
  dedupeChunk: string;
  blockStats: boolean;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--persons <n>', 'persons (one source record each) in the MPI', '1000000')
    .option('--queries <n>', 'incoming records timed', '2000')
    .option('--warmup <n>', 'incoming records run before the clock', '200')
    .option('--holdout <n>', 'records kept out of the database (>= queries + warm-up)', '5000')
    .option(
      '--dup-share <x>',
      'share of the held-out records that duplicate a loaded person',
      '0.5',
    )
    .option('--seed <s>', 'seed of the synthetic population', '1')
    .option('--chunk <n>', 'records per insert statement of the preload', '5000')
    .option('--connections <n>', 'insert statements in flight during the preload', '1')
    .option('--database-url <url>', 'load into this (empty, migrated or not) database')
    .option('--reuse <url>', 'a database this bench loaded before (same --persons/--seed)')
    .option('--keep', 'keep the fresh database at the end (its URL is printed)')
    .option('--skip-dedupe', 'do not run mpi:dedupe')
    .option('--dedupe-chunk <n>', 'mpi:dedupe --chunk', '1000')
    .option('--no-block-stats', 'skip the per-rule statistics of mpi_block (a GROUP BY key)')
    .parse()
    .opts<Options>();
  const int = (name: string, value: string, min: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name}: expected an integer >= ${min}, got ${value}`);
    }
    return n;
  };
  const personsN = int('persons', opts.persons, 1000);
  const queriesN = int('queries', opts.queries, 1);
  const warmupN = int('warmup', opts.warmup, 0);
  const holdoutN = int('holdout', opts.holdout, queriesN + warmupN);
  const chunk = int('chunk', opts.chunk, 1);
  const connections = int('connections', opts.connections, 1);
  const dedupeChunk = int('dedupe-chunk', opts.dedupeChunk, 1);
  const dupShare = Number(opts.dupShare);
  if (!(dupShare >= 0 && dupShare <= 1)) {
    throw new Error('--dup-share: a number between 0 and 1');
  }
  if (opts.reuse && opts.databaseUrl) {
    throw new Error('--reuse and --database-url exclude each other');
  }
  const pressureBefore = cpuPressure();
  log(
    `bench:match: ${fmt(personsN)} persons, ${fmt(queriesN)} queries (+${warmupN} warm-up), seed ${opts.seed}; PostgreSQL ${new URL(opts.reuse ?? opts.databaseUrl ?? ADMIN_URL).host}`,
  );
  log(`  /proc/pressure/cpu before: ${pressureBefore}`);

  log('generating the population (scripts/generate)');
  const pop = buildPopulation(personsN, holdoutN, dupShare, opts.seed);
  log(
    `  ${fmt(pop.people)} people → ${fmt(pop.generatorRecords)} records in ${pop.seconds.toFixed(1)} s; loading ${fmt(pop.loaded.length)} (${fmt(pop.loadedDuplicates)} of them duplicates of a loaded person), holding out ${fmt(pop.queries.length)}`,
  );

  const fresh = opts.reuse || opts.databaseUrl ? undefined : await createTestDatabase(ADMIN_URL);
  const url = opts.reuse ?? opts.databaseUrl ?? fresh!.url;
  const db = new Client({ connectionString: url });
  try {
    let preloadStats: PreloadStats | undefined;
    if (opts.reuse) {
      await db.connect();
      const { rows } = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM "mpi_person" WHERE "status" = 'active'`,
      );
      const q0 = pop.queries[0].record;
      const l0 = pop.loaded[pop.loaded.length - 1];
      const { rows: probe } = await db.query<{ q: string; l: string }>(
        `SELECT (SELECT count(*) FROM "mpi_source_record" WHERE "authority" = $1 AND "mrn" = $2) AS q,
           (SELECT count(*) FROM "mpi_source_record" WHERE "authority" = $3 AND "mrn" = $4) AS l`,
        [AUTHORITIES[q0.authority], q0.mrn, AUTHORITIES[l0.authority], l0.mrn],
      );
      if (Number(rows[0].n) !== personsN || probe[0].q !== '0' || probe[0].l !== '1') {
        throw new Error(
          `--reuse: the database does not hold this population (${rows[0].n} active persons; run with the --persons/--seed/--holdout it was loaded with)`,
        );
      }
      log(`reusing ${url.replace(/\/\/[^@]*@/, '//')} (${fmt(personsN)} persons)`);
    } else {
      const ds = createDataSource({ databaseUrl: url, poolSize: 1 });
      await ds.initialize(); // runs the migrations
      await ds.destroy();
      await db.connect();
      const { rows } = await db.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM "mpi_person") + (SELECT count(*) FROM "mpi_source_record") AS n`,
      );
      if (Number(rows[0].n) > 0) {
        throw new Error('the database is not empty (the bench needs a freshly migrated one)');
      }
      log(`preloading ${fmt(personsN)} persons`);
      preloadStats = await preload(url, pop, chunk, connections);
      log(
        `  preload: ${preloadStats.seconds.toFixed(1)} s (insert ${preloadStats.load_s} s, indexes ${preloadStats.index_s} s, VACUUM ANALYZE + CHECKPOINT ${preloadStats.vacuum_s} s); ${fmt(preloadStats.block_rows)} block rows, ${fmt(preloadStats.identifiers)} identifiers`,
      );
    }
    pop.loaded.length = 0; // the records are in the database now
    const sizes = await tableSizes(db);
    const blocks = opts.blockStats ? await blockStats(db) : [];

    log('lookup + scoring');
    const pressureLookup = cpuPressure();
    const lk = await lookup(url, pop, warmupN, queriesN, db);
    const pressureLookupAfter = cpuPressure();
    const S = lk.samples;
    const total = dist(S.map((s) => s.total));
    const dbPart = dist(S.map((s) => s.db));
    const scorePart = dist(S.map((s) => s.score));
    const keysPart = dist(S.map((s) => s.keys));
    const cand = dist(S.map((s) => s.candidates));
    const blockRows = dist(S.map((s) => s.blockRows));
    const wsRecords = dist(S.map((s) => s.wsRecords));
    const nKeys = dist(S.map((s) => s.blockKeys));
    const dupS = S.filter((s) => s.duplicate);
    const newS = S.filter((s) => !s.duplicate);
    const count = (list: Sample[], f: (s: Sample) => boolean) => list.filter(f).length;

    let dd: DedupeResult | undefined;
    if (!opts.skipDedupe) {
      const { rows } = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM "mpi_duplicate_task"`,
      );
      if (Number(rows[0].n) > 0) {
        log(`  emptying mpi_duplicate_task (${rows[0].n} tasks of an earlier run)`);
        await db.query(`TRUNCATE "mpi_duplicate_task"`);
        await db.query(`VACUUM ANALYZE "mpi_duplicate_task"`);
      }
      log(`mpi:dedupe over ${fmt(personsN)} records`);
      dd = await dedupe(url, dedupeChunk);
    }
    const sizesAfter = dd ? await tableSizes(db) : sizes;

    // ---- report ----
    console.log(
      `population: ${fmt(pop.people)} generated people → ${fmt(personsN)} persons loaded (one record each; ${fmt(pop.loadedDuplicates)} duplicates of a loaded person), ${fmt(queriesN)} queries (${dupS.length} duplicates of a loaded person, ${newS.length} new people), ${warmupN} warm-up`,
    );
    if (preloadStats) {
      console.log(
        `preload: ${preloadStats.seconds.toFixed(1)} s = ${fmt(preloadStats.persons_per_sec)} persons/s (insert ${preloadStats.load_s} s, index builds ${preloadStats.index_s} s, VACUUM ANALYZE + CHECKPOINT ${preloadStats.vacuum_s} s); ${fmt(preloadStats.block_rows)} mpi_block rows (${round(preloadStats.block_rows / personsN, 1)} per record), ${fmt(preloadStats.identifiers)} identifiers`,
      );
    }
    console.log(`database ${fmt(sizes.database_mb)} MB:`);
    for (const t of sizesAfter.tables) {
      console.log(
        `  ${t.name.padEnd(20)} ${fmt(t.rows).padStart(11)} rows  total ${fmt(t.total_mb).padStart(6)} MB  heap ${fmt(t.heap_mb).padStart(6)} MB  ${Object.entries(
          t.indexes,
        )
          .map(([n, s]) => `${n} ${fmt(s)} MB`)
          .join(', ')}`,
      );
    }
    if (blocks.length > 0) {
      console.log('mpi_block by rule (rows, keys, mean/max records per key, keys over 100):');
      for (const b of blocks) {
        console.log(
          `  ${b.rule.padEnd(3)} ${fmt(b.rows).padStart(11)} rows ${fmt(b.keys).padStart(10)} keys  mean ${String(b.mean).padStart(6)}  max ${fmt(b.max).padStart(6)}  over 100: ${fmt(b.over100)} keys (${fmt(b.rowsOver100)} rows)`,
        );
      }
    }
    console.log(
      `lookup + scoring, one record per call (${queriesN} records, ${lk.cpu.elapsed_s} s; /proc/pressure/cpu before ${pressureLookup.replace(/^some /, '')}, after ${pressureLookupAfter.replace(/^some /, '')}):`,
    );
    console.log(`  total   ${showDist(total)}`);
    console.log(`  keys    ${showDist(keysPart)}   (collectPrefetch: blocking keys)`);
    console.log(`  db      ${showDist(dbPart)}   (MpiStore.prefetch)`);
    console.log(`  score   ${showDist(scorePart)}   (resolver.resolve)`);
    console.log(
      `  per record: ${showDist(nKeys, 'blocking keys')}; ${showDist(blockRows, 'block rows')}; ${showDist(cand, 'candidates scored')}; ${showDist(wsRecords, 'records in the working set')}`,
    );
    console.log(
      `  duplicates of a loaded person: total ${showDist(dist(dupS.map((s) => s.total)))}; auto-linked ${count(dupS, (s) => s.outcome === 'auto-link')} (to the right person ${count(dupS, (s) => s.correct === true)}), review ${count(dupS, (s) => s.outcome === 'review')}, no candidate above review ${count(dupS, (s) => s.outcome === 'none')}`,
    );
    console.log(
      `  new people: total ${showDist(dist(newS.map((s) => s.total)))}; auto-linked ${count(newS, (s) => s.outcome === 'auto-link')} (wrongly), review ${count(newS, (s) => s.outcome === 'review')}, none ${count(newS, (s) => s.outcome === 'none')}`,
    );
    console.log(
      `  CPU over the measured interval: bench ${lk.cpu.bench_s} s, PostgreSQL ${lk.cpu.postgres_s} s; machine busy ${lk.cpu.machine_busy_pct}%`,
    );
    console.log(
      `  garbage collections in the bench during the interval: ${lk.gc.count} (${lk.gc.total_ms} ms in all, longest ${lk.gc.max_ms} ms); ${lk.gc.slowHit} of the ${lk.gc.slow} slowest records (2%) overlap one; by kind ${JSON.stringify(lk.gc.kinds)}; heap used after ${lk.gc.heapMb} MB. PostgreSQL blocks: ${fmt(lk.blocks.hit)} hit in shared_buffers, ${fmt(lk.blocks.read)} read from the OS`,
    );
    const stmtTotal = [...lk.statements.values()].reduce((t, s) => t + s.ms, 0);
    console.log('  prefetch statements (per record: calls, mean ms, p50/p99 ms, rows; share):');
    for (const [name, st] of [...lk.statements].sort((a, b) => b[1].ms - a[1].ms)) {
      const d = dist(st.times);
      console.log(
        `    ${name.padEnd(20)} ${round(st.calls / queriesN, 2)} calls  ${round(st.ms / queriesN, 3)} ms  p50 ${d.p50} / p99 ${d.p99} ms  ${round(st.rows / queriesN, 1)} rows  ${round((100 * st.ms) / Math.max(0.001, stmtTotal), 1)}%`,
      );
    }
    lk.explain.forEach((l) => console.log(l));
    if (dd) {
      const r = dd.report;
      console.log(
        `mpi:dedupe: ${fmt(r.records)} records in ${r.elapsed_s} s (process ${dd.wall_s} s) = ${fmt(r.records_per_sec)} records/s; ${fmt(r.candidate_pairs)} candidate pairs scored, ${fmt(r.auto_link_pairs)} auto-link and ${fmt(r.review_pairs)} review pairs, ${fmt(r.tasks_opened)} tasks opened; peak RSS ${dd.peak_rss_mb} MB (end ${r.rss_mb} MB); CPU s: dedupe ${dd.child_cpu_s}, PostgreSQL ${dd.postgres_cpu_s}; machine busy ${dd.machine_busy_pct}%`,
      );
    }
    const lookupOk = total.p50 <= 5 && total.p99 <= 20;
    const dedupeOk = dd ? dd.report.elapsed_s <= 600 : undefined;
    console.log(
      `targets: lookup p50 ≤ 5 ms and p99 ≤ 20 ms: ${lookupOk ? 'met' : 'NOT met'} (${total.p50} / ${total.p99} ms)${dd ? `; mpi:dedupe ≤ 10 min: ${dedupeOk ? 'met' : 'NOT met'} (${dd.report.elapsed_s} s)` : ''}`,
    );
    if (opts.keep && fresh) {
      log(`database kept: ${url}  (rerun with --reuse ${url})`);
    }
    const out: Record<string, unknown> = {
      persons: personsN,
      queries: queriesN,
      lookup_p50_ms: total.p50,
      lookup_p95_ms: total.p95,
      lookup_p99_ms: total.p99,
      lookup_max_ms: total.max,
      lookup_db_p50_ms: dbPart.p50,
      lookup_db_p99_ms: dbPart.p99,
      lookup_score_p50_ms: scorePart.p50,
      lookup_score_p99_ms: scorePart.p99,
      lookup_keys_p50_ms: keysPart.p50,
      lookup_gc_ms: lk.gc.total_ms,
      lookup_pg_blocks_read: lk.blocks.read,
      candidates_p50: cand.p50,
      candidates_p99: cand.p99,
      block_rows_p50: blockRows.p50,
      block_rows_p99: blockRows.p99,
      dup_auto_linked: count(dupS, (s) => s.outcome === 'auto-link'),
      dup_queries: dupS.length,
      new_wrongly_linked: count(newS, (s) => s.outcome === 'auto-link'),
      dedupe_s: dd?.report.elapsed_s ?? null,
      dedupe_process_s: dd?.wall_s ?? null,
      dedupe_records_per_sec: dd?.report.records_per_sec ?? null,
      dedupe_candidate_pairs: dd?.report.candidate_pairs ?? null,
      dedupe_tasks: dd?.report.tasks_opened ?? null,
      dedupe_peak_rss_mb: dd?.peak_rss_mb ?? null,
      dedupe_cpu_s: dd?.child_cpu_s ?? null,
      dedupe_postgres_cpu_s: dd?.postgres_cpu_s ?? null,
      preload_s: preloadStats ? round(preloadStats.seconds, 1) : null,
      preload_persons_per_sec: preloadStats?.persons_per_sec ?? null,
      block_rows: sizes.tables.find((t) => t.name === 'mpi_block')?.rows ?? null,
      database_mb: sizes.database_mb,
      table_mb: Object.fromEntries(sizes.tables.map((t) => [t.name, t.total_mb])),
      lookup_target_met: lookupOk,
      dedupe_target_met: dedupeOk ?? null,
      cpu_pressure_before: pressureBefore.replace(/^some /, ''),
      cpu_pressure_lookup: pressureLookup.replace(/^some /, ''),
      cpu_pressure_after: (dd?.pressure_after ?? cpuPressure()).replace(/^some /, ''),
      reused: opts.reuse !== undefined,
    };
    console.log(JSON.stringify(out));
  } finally {
    await db.end().catch(() => undefined);
    if (fresh && !opts.keep) {
      await fresh.drop();
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
