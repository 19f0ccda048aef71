import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { parseMessage } from '@engine/hl7';
import {
  DeterministicIdentityResolver,
  MpiPipeline,
  MpiStore,
  normalizeMessage,
} from '@engine/mpi';
import { createDataSource, MessageRepository } from '@engine/store';
import { receivedMessage } from '@engine/store/testing';
// Seeded (mulberry32), so a failing stream can be replayed.
import { prng } from '../../bench/common';

/**
 * Support for pipeline end-to-end tests: a seeded stream of interleaved ADT/ORU messages about a
 * few patients (fictitious people), worker child processes, the "apply one by one in arrival
 * order" reference, and a canonical snapshot of the MPI that ignores generated ids.
 */

const FAMILY = ['ALVAREZ', 'BECK', 'CHEN', 'DUBOIS', 'EVANS', 'FISCHER', 'GARCIA', 'HOLM'];
const GIVEN = ['ANNA', 'BRUNO', 'CLARA', 'DAVID', 'EMMA', 'FELIX', 'GRETA', 'HUGO'];
const STREET = ['OAK ST', 'ELM AVE', 'PINE RD', 'MAPLE DR', 'CEDAR LN'];

export interface StreamMessage {
  /** Index of the patient whose connection sends it (the PID-3 patient). */
  patient: number;
  text: string;
}

/**
 * `count` messages about `patients` patients (MRN P<n> at HOSP), interleaved at random: the
 * first message of a patient registers it (A04), later ones are A08 updates (name, address,
 * phone), A01/A03 visits, ORU results (some corrected later). Event times strictly increase.
 * `merges` are [prior, survivor] pairs applied as A40 at the given positions.
 */
export function patientStream(
  seed: number,
  count: number,
  patients: number,
  merges: Array<{ at: number; prior: number; survivor: number }>,
): StreamMessage[] {
  const rnd = prng(seed);
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)];
  const registered = new Set<number>();
  const visits = new Map<number, number>();
  const orders = new Map<number, number>();
  const out: StreamMessage[] = [];
  const base = Date.UTC(2024, 0, 1, 8, 0, 0);
  for (let i = 0; i < count; i++) {
    const when = new Date(base + i * 60_000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    const ctl = `S${seed}-${i}`;
    const merge = merges.find((m) => m.at === i);
    if (merge) {
      out.push({
        patient: merge.survivor,
        text: hl7(ctl, when, 'ADT^A40', [
          `EVN|A40|${when}`,
          pid(merge.survivor, rnd, pick),
          `MRG|P${merge.prior}^^^HOSP^MR`,
        ]),
      });
      continue;
    }
    const p = Math.floor(rnd() * patients);
    if (!registered.has(p)) {
      registered.add(p);
      out.push({
        patient: p,
        text: hl7(ctl, when, 'ADT^A04', [`EVN|A04|${when}`, pid(p, rnd, pick), 'PV1|1|O']),
      });
      continue;
    }
    const r = rnd();
    if (r < 0.4) {
      out.push({
        patient: p,
        text: hl7(ctl, when, 'ADT^A08', [`EVN|A08|${when}`, pid(p, rnd, pick)]),
      });
    } else if (r < 0.55) {
      const v = (visits.get(p) ?? 0) + 1;
      visits.set(p, v);
      out.push({
        patient: p,
        text: hl7(ctl, when, 'ADT^A01', [
          `EVN|A01|${when}`,
          pid(p, rnd, pick),
          pv1({ 2: 'I', 3: `W${v}^${p}^1`, 10: 'MED', 19: `V${p}-${v}`, 44: when }),
        ]),
      });
    } else if (r < 0.65 && visits.has(p)) {
      const v = visits.get(p)!;
      out.push({
        patient: p,
        text: hl7(ctl, when, 'ADT^A03', [
          `EVN|A03|${when}`,
          pid(p, rnd, pick),
          pv1({ 2: 'I', 3: `W${v}^${p}^1`, 10: 'MED', 19: `V${p}-${v}`, 36: '01', 45: when }),
        ]),
      });
    } else {
      const correct = orders.has(p) && rnd() < 0.3;
      const o = correct ? orders.get(p)! : (orders.get(p) ?? 0) + 1;
      orders.set(p, o);
      const value = (70 + Math.floor(rnd() * 60)).toString();
      out.push({
        patient: p,
        text: hl7(ctl, when, 'ORU^R01^ORU_R01', [
          pid(p, rnd, pick),
          `OBR|1|PL${p}-${o}|FL${p}-${o}|2345-7^GLUCOSE^LN|||${when}||||||||||||||||||${correct ? 'C' : 'F'}`,
          `OBX|1|NM|2345-7^GLUCOSE^LN||${value}|mg/dL|70-99|N|||${correct ? 'C' : 'F'}`,
        ]),
      });
    }
  }
  return out;
}

function pid(p: number, rnd: () => number, pick: <T>(l: T[]) => T): string {
  const family = FAMILY[p % FAMILY.length];
  const given = rnd() < 0.2 ? pick(GIVEN) : GIVEN[p % GIVEN.length];
  const number = 1 + Math.floor(rnd() * 99);
  const phone = `555${String(1000 + Math.floor(rnd() * 8999))}`;
  const ssn = p % 3 === 0 ? `${String(100 + p).padStart(3, '1')}-45-${String(1000 + p)}` : '';
  return (
    `PID|1||P${p}^^^HOSP^MR||${family}^${given}||19${String(50 + (p % 40))}0${1 + (p % 9)}1${p % 10}|` +
    `${p % 2 ? 'M' : 'F'}|||${number} ${pick(STREET)}^^TOWN^ST^1${String(p).padStart(4, '0')}^USA^H||` +
    `${phone}|||||||${ssn}`
  );
}

/** A PV1 segment from field number → value. */
function pv1(fields: Record<number, string>): string {
  const max = Math.max(...Object.keys(fields).map(Number));
  const out = ['PV1', '1'];
  for (let f = 2; f <= max; f++) {
    out.push(fields[f] ?? '');
  }
  return out.join('|');
}

function hl7(ctl: string, when: string, type: string, segs: string[]): string {
  return (
    [`MSH|^~\\&|ADT|HOSP|ENGINE|DEST|${when}||${type}|${ctl}|P|2.5.1`, ...segs].join('\r') + '\r'
  );
}

/** A worker process (`main.ts worker`) through ts-node, like an operator's second worker. */
export function spawnWorker(env: Record<string, string>): ChildProcess {
  return spawnEngine(['worker'], { LOG_LEVEL: 'warn', ...env });
}

/**
 * The engine with `roles` (every role when empty) as a child process, run from the TypeScript
 * sources. Its output is discarded unless `output` is given (stdout and stderr, as they come).
 */
export function spawnEngine(
  roles: string[],
  env: Record<string, string>,
  output?: (text: string) => void,
): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      'apps/engine/src/main.ts',
      ...roles,
    ],
    {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, TS_NODE_PROJECT: 'tsconfig.json', ...env },
      stdio: ['ignore', output ? 'pipe' : 'ignore', 'pipe'],
    },
  );
  child.stdout?.setEncoding('utf8').on('data', (s: string) => output?.(s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => output?.(s));
  return child;
}

/** Writes an engine YAML for child processes; returns its path and a cleanup. */
export function writeEngineConfig(yaml: string): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'engine-cfg-'));
  const file = join(dir, 'engine.yaml');
  writeFileSync(file, yaml);
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The reference: the stored messages applied one at a time, in arrival (id) order, by one
 * pipeline on a fresh SQLite database. Returns that database (caller destroys it).
 */
export async function applySequentially(
  messages: Array<{ id: string; raw: Buffer; received_at: Date | string }>,
): Promise<{ ds: DataSource; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mpi-reference-'));
  const ds = createDataSource({ sqlitePath: join(dir, 'reference.sqlite') });
  await ds.initialize();
  const repo = new MessageRepository(ds);
  const pipeline = new MpiPipeline(new MpiStore(ds), {
    survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
    identity: new DeterministicIdentityResolver(),
  });
  for (const m of messages) {
    const msg = parseMessage(m.raw);
    const receivedAt = new Date(m.received_at);
    const row = receivedMessage(m.raw, {
      id: m.id,
      controlId: msg.controlId,
      type: msg.messageType,
      trigger: msg.triggerEvent,
      version: msg.version,
      receivedAt,
    });
    await repo.insertBatch([row], { dedupWindowMs: 0 });
    await pipeline.applyBatch([{ messageId: m.id, receivedAt, normalized: normalizeMessage(msg) }]);
  }
  return {
    ds,
    cleanup: async () => {
      await ds.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A row as the drivers return it (JSON columns are objects on PostgreSQL; `canonical` takes both). */
type Row = Record<string, string | number | boolean | null>;

function canonical(v: unknown): unknown {
  if (typeof v === 'string' && (v.startsWith('{') || v.startsWith('['))) {
    try {
      return canonical(JSON.parse(v));
    } catch {
      return v;
    }
  }
  if (Array.isArray(v)) {
    return v.map(canonical);
  }
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * The MPI of a database in a form two databases can be compared in: every generated id
 * (EUIDs, record, encounter and result ids) replaced by the business keys it stands for, and
 * the events as (control id, type, person) triples, duplicates included.
 */
export async function mpiSnapshot(ds: DataSource): Promise<Record<string, unknown>> {
  const q = (sql: string) => ds.query<Row[]>(sql);
  const records = await q(`SELECT * FROM mpi_source_record`);
  const recKey = new Map(records.map((r) => [String(r.id), `${r.authority}|${r.mrn}`]));
  const persons = await q(`SELECT * FROM mpi_person`);
  const personKey = new Map<string, string>();
  for (const p of persons) {
    const keys = records
      .filter((r) => r.person_euid === p.euid)
      .map((r) => recKey.get(String(r.id)))
      .sort();
    if (keys.length > 0) {
      personKey.set(String(p.euid), keys.join(','));
    }
  }
  for (const p of persons) {
    if (!personKey.has(String(p.euid))) {
      personKey.set(String(p.euid), `empty->${personKey.get(String(p.merged_into)) ?? '?'}`);
    }
  }
  const pk = (euid: Row[string]) => (euid == null ? null : (personKey.get(String(euid)) ?? '?'));
  const rk = (id: Row[string]) => (id == null ? null : (recKey.get(String(id)) ?? '?'));
  const sortBy = <T>(list: T[], key: (t: T) => string) =>
    [...list].sort((a, b) => key(a).localeCompare(key(b)));
  const identifiers = await q(`SELECT * FROM mpi_identifier`);
  const encounters = await q(`SELECT * FROM mpi_encounter`);
  const results = await q(`SELECT * FROM mpi_result`);
  const events = await q(
    `SELECT e.type, e.euid, m.control_id FROM mpi_event e LEFT JOIN message m ON m.id = e.message_id`,
  );
  return {
    persons: sortBy(
      persons.map((p) => ({
        key: pk(p.euid),
        status: p.status,
        mergedInto: pk(p.merged_into),
        golden: canonical(p.golden),
      })),
      (p) => String(p.key),
    ),
    records: sortBy(
      records.map((r) => ({
        key: rk(r.id),
        person: pk(r.person_euid),
        status: r.status,
        mergedInto: rk(r.merged_into),
        data: canonical(r.data),
        dataTime: Number(r.data_time),
      })),
      (r) => String(r.key),
    ),
    identifiers: identifiers
      .map(
        (i) =>
          `${rk(i.source_record_id)}:${i.authority}|${i.value}|${i.type}|${i.retired === true || i.retired === 1}`,
      )
      .sort(),
    encounters: sortBy(
      encounters.map((e) => ({
        key: `${rk(e.origin_record_id)}#${e.visit_key}`,
        owner: rk(e.source_record_id),
        status: e.status,
        data: canonical(e.data),
      })),
      (e) => e.key,
    ),
    results: sortBy(
      results.map((r) => ({
        key: `${rk(r.origin_record_id)}#${r.order_key}`,
        owner: rk(r.source_record_id),
        status: r.status,
        data: canonical(r.data),
      })),
      (r) => r.key,
    ),
    events: events.map((e) => `${e.control_id}|${e.type}|${pk(e.euid)}`).sort(),
  };
}
