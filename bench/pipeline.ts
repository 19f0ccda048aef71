/**
 * bench:pipeline — messages/s from the inbound queue to a committed MPI update on PostgreSQL,
 * with an MPI that already holds `--persons` people.
 *
 *   npm run bench:pipeline -- [--persons 100000] [--messages 20000] [--workers 1] [--rate 0]
 *
 * 1. A fresh database (createTestDatabase, dropped at the end unless --keep) is migrated and
 *    preloaded with N persons, one HOSP source record each (bulk SQL over jsonb_to_recordset,
 *    not the pipeline); the record data is what the pipeline's own normalizer makes of the
 *    person's PID, and golden/provenance are computed by the engine's survivorship. VACUUM
 *    ANALYZE.
 * 2. A stream of HL7 messages about fictitious people is generated (A08 updates, A01/A03 visits,
 *    ORU^R01 results, A04 new patients, some of them from a second authority linked on
 *    SSN + birth date + sex, A40 merges, A31/A28) and stored as `received` message rows through
 *    MessageRepository.insertBatch, in the partition the gateway would choose (its patientKey),
 *    with UUIDv7 ids in arrival order. VACUUM ANALYZE of `message` (unless
 *    --no-analyze-messages: the statistics decide the plan of the worker's pending-message
 *    query, which is printed), CHECKPOINT.
 * 3. The worker role starts (child processes running `dist/apps/engine/src/main.js worker`, or
 *    with --in-process engines in this process) and takes its partition leases; the first
 *    --warmup messages are enqueued and processed before the clock.
 * 4. Clock starts: one job per remaining message is enqueued (InboundQueues, arrival order; all
 *    at once, or paced with --rate); the database is polled every 250 ms (progress on stderr);
 *    the clock stops when no message is left `received`.
 * 5. Checks: statuses, error codes, events, persons, links and merges against what the stream
 *    must produce; p50/p99 of enqueue → processed_at; CPU seconds of the worker, PostgreSQL,
 *    Redis and everything else over the measured interval (/proc), Redis commands
 *    (INFO commandstats, server-wide) and PostgreSQL transactions.
 *
 * --phases (with --in-process) times the pipeline's phases and SQL statements by wrapping their
 * methods at run time (the engine code is not changed); --cpu-prof DIR (with --in-process)
 * writes a V8 CPU profile of the measured interval and prints where the samples fall.
 *
 * Prints a summary, then ONE JSON line: {"msgs_per_sec":…,"messages":…,"elapsed_s":…, …}
 * Needs DATABASE_URL's server to allow CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/test).
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Job, Worker } from 'bullmq';
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { Client, Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { type EngineConfig, loadSettings, validateEngineConfig } from '@engine/config';
import { patientKey } from '@engine/gateway';
import { parseMessage } from '@engine/hl7';
import {
  computeGolden,
  isPlausibleSsn,
  MpiPipeline,
  MpiStore,
  patientFromPid,
  ProbabilisticIdentityResolver,
  type PatientRecord,
} from '@engine/mpi';
import { type InboundJobData, InboundQueues, partitionOf } from '@engine/queue';
import { createDataSource, MessageRepository, type NewMessage } from '@engine/store';
import { createTestDatabase } from '@engine/store/testing';
import { InboundProcessor } from '@engine/worker';
import { startEngine, type StartedEngine } from '../apps/engine/src/bootstrap';
import { PipelineService } from '../apps/worker/src/pipeline.service';
import {
  clearPrefix,
  cpuPressure,
  type CpuProfile,
  prng,
  profileTree,
  waitForLeases,
} from './common';

const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const FEED = 'bench';
/** Data time of the preloaded records (every message of the stream is newer). */
const PRELOAD_TIME = new Date('2024-01-01T00:00:00Z');
/** EVN-2/MSH-7 of the first message; each next one is a second later. */
const STREAM_START_MS = Date.UTC(2025, 5, 1, 8, 0, 0);
const CLK_TCK = 100;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/* ------------------------------------------------------------------ people */

// Fictitious people: small lists combined with the person's index.
// prettier-ignore
const SURNAMES = [
  'ALDER', 'BRANWELL', 'CASTOR', 'DELANEY', 'EVERLY', 'FENWICK', 'GARLAND', 'HOLLOWAY',
  'IRVINE', 'JARROW', 'KESTREL', 'LANGDON', 'MARLOWE', 'NORCROSS', 'OAKLEY', 'PEMBERTON',
  'QUILLAN', 'RADCLIFF', 'SELWYN', 'THACKER', 'UPTON', 'VALE', 'WINSLOW', 'YARDLEY',
  'ZEBRINE', 'ASHDOWN', 'BRIMLEY', 'COLDWELL', 'DUNMORE', 'ELSWORTH', 'FAIRLEY', 'GRISBY',
  'HARTWELL', 'INGRAM', 'JESSOP', 'KILBRIDE', 'LOCKWOOD', 'MERRIWEATHER', 'NETTLETON', 'ORMSBY',
];
const SURNAME_SUFFIX = ['', 'SON', 'TON', 'LEY', 'FORD', 'WOOD', 'MAN', 'BY'];
// prettier-ignore
const GIVEN_F = [
  'ALMA', 'BEATRIX', 'CORA', 'DELIA', 'EDNA', 'FLORA', 'GRETA', 'HAZEL', 'IRIS', 'JUNE',
  'KAREN', 'LOLA', 'MAVIS', 'NELL', 'OPAL', 'PEARL', 'ROSA', 'SYLVIA', 'TESSA', 'VERA',
];
// prettier-ignore
const GIVEN_M = [
  'ABEL', 'BRUNO', 'CLYDE', 'DORIAN', 'ELMER', 'FELIX', 'GIDEON', 'HOMER', 'IVOR', 'JASPER',
  'KURT', 'LEVI', 'MILO', 'NOEL', 'OSWALD', 'PERCY', 'RUFUS', 'SILAS', 'TOBIAS', 'WALDO',
];
const STREETS = ['MAIN', 'OAK', 'ELM', 'MAPLE', 'CEDAR', 'PINE', 'LAKE', 'HILL', 'BIRCH', 'MILL'];
const STREET_TYPES = ['ST', 'AVE', 'RD', 'LN', 'DR'];
const TOWNS: Array<[string, string, string]> = [
  ['RIVERTON', 'IL', '627'],
  ['LAKEWOOD', 'OH', '441'],
  ['FAIRVIEW', 'PA', '165'],
  ['MILLBROOK', 'NY', '125'],
  ['OAKDALE', 'MN', '551'],
  ['PINEHURST', 'NC', '283'],
  ['GREENVILLE', 'SC', '296'],
  ['WESTFIELD', 'MA', '010'],
];
const AREA_CODES = ['217', '312', '614', '412', '518', '651', '910', '864'];

interface Person {
  authority: string;
  mrn: string;
  family: string;
  given: string;
  middle: string;
  /** YYYYMMDD */
  dob: string;
  sex: 'F' | 'M';
  /** Nine digits, or undefined (about 30% have none). */
  ssn?: string;
  line1: string;
  town: number;
  zip: string;
  /** Ten digits. */
  phone: string;
  marital: string;
  /** Visit number of an open inpatient stay (from an A01 of the stream). */
  openVisit?: string;
  /** Merged away (an A40's prior record): the sender no longer uses the MRN. */
  gone?: boolean;
  /** Takes part in a link (A04 from the second authority) or a merge: not picked again. */
  reserved?: boolean;
}

/** A plausible, unique SSN for index i (area 101-600, group 11-98, serial from 1001). */
function ssnFor(i: number): string {
  const area = 101 + (i % 500);
  const group = 11 + (Math.floor(i / 500) % 88);
  const serial = 1001 + Math.floor(i / 44000);
  const ssn = `${area}${String(group).padStart(2, '0')}${String(serial).padStart(4, '0')}`;
  if (!isPlausibleSsn(ssn)) {
    throw new Error(`generated an implausible SSN for index ${i}`);
  }
  return ssn;
}

function makePerson(i: number, authority: string, mrn: string, rand: () => number): Person {
  const sex = rand() < 0.5 ? 'F' : 'M';
  const givenList = sex === 'F' ? GIVEN_F : GIVEN_M;
  const year = 1930 + Math.floor(rand() * 90);
  const month = 1 + Math.floor(rand() * 12);
  const day = 1 + Math.floor(rand() * 28);
  const town = Math.floor(rand() * TOWNS.length);
  return {
    authority,
    mrn,
    family: `${SURNAMES[i % SURNAMES.length]}${SURNAME_SUFFIX[Math.floor(i / SURNAMES.length) % SURNAME_SUFFIX.length]}`,
    given: givenList[Math.floor(rand() * givenList.length)],
    middle: String.fromCharCode(65 + (i % 26)),
    dob: `${year}${String(month).padStart(2, '0')}${String(day).padStart(2, '0')}`,
    sex,
    ssn: rand() < 0.7 ? ssnFor(i) : undefined,
    line1: streetLine(rand),
    town,
    zip: `${TOWNS[town][2]}${String(Math.floor(rand() * 100)).padStart(2, '0')}`,
    phone: phoneFor(rand),
    marital: rand() < 0.5 ? 'M' : 'S',
  };
}

function streetLine(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 9899);
  const s = STREETS[Math.floor(rand() * STREETS.length)];
  return `${n} ${s} ${STREET_TYPES[Math.floor(rand() * STREET_TYPES.length)]}`;
}

function phoneFor(rand: () => number): string {
  const area = AREA_CODES[Math.floor(rand() * AREA_CODES.length)];
  return `${area}555${String(Math.floor(rand() * 10000)).padStart(4, '0')}`;
}

/** HL7 fields joined, trailing empty fields dropped. */
function segment(fields: string[]): string {
  let end = fields.length;
  while (end > 1 && fields[end - 1] === '') {
    end--;
  }
  return fields.slice(0, end).join('|');
}

function pidSegment(p: Person): string {
  const [city, state] = TOWNS[p.town];
  const f = new Array<string>(20).fill('');
  f[0] = 'PID';
  f[1] = '1';
  f[3] = `${p.mrn}^^^${p.authority}^MR`;
  f[5] = `${p.family}^${p.given}^${p.middle}^^^^L`;
  f[7] = p.dob;
  f[8] = p.sex;
  f[11] = `${p.line1}^^${city}^${state}^${p.zip}^USA^H`;
  f[13] = `(${p.phone.slice(0, 3)})${p.phone.slice(3, 6)}-${p.phone.slice(6)}^PRN^PH`;
  f[15] = 'ENG';
  f[16] = p.marital;
  f[19] = p.ssn ? `${p.ssn.slice(0, 3)}-${p.ssn.slice(3, 5)}-${p.ssn.slice(5)}` : '';
  return segment(f);
}

function hl7Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/* ------------------------------------------------------------------ preload */

interface PreloadResult {
  persons: Person[];
  seconds: number;
}

/**
 * Preloads `n` persons (one HOSP record each, with its identifiers) in chunks, by set-based
 * inserts over jsonb_to_recordset. The record data is the engine's own normalization of the
 * person's PID, so an unchanged A08 later is recognised as unchanged.
 */
async function preload(
  db: Client,
  n: number,
  rand: () => number,
  chunk: number,
): Promise<PreloadResult> {
  const started = performance.now();
  const persons: Person[] = [];
  const resolver = new ProbabilisticIdentityResolver();
  const survivorship = { default: 'mostRecent' as const, trustedAuthorities: [], fields: {} };
  const dataTime = PRELOAD_TIME.getTime();
  const stamp = PRELOAD_TIME.toISOString();
  for (let from = 0; from < n; from += chunk) {
    const personRows: Record<string, unknown>[] = [];
    const recordRows: Record<string, unknown>[] = [];
    const identifierRows: Record<string, unknown>[] = [];
    const blockRows: Record<string, unknown>[] = [];
    for (let i = from; i < Math.min(n, from + chunk); i++) {
      const p = makePerson(i, 'HOSP', `M${String(i + 1).padStart(8, '0')}`, rand);
      persons.push(p);
      const header = `MSH|^~\\&|ADT1|HOSP|ENGINE|DEST|20240101000000||ADT^A28^ADT_A05|L${i}|P|2.5.1`;
      const pid = parseMessage(`${header}\r${pidSegment(p)}\r`).segment('PID');
      if (!pid) {
        throw new Error('generated PID did not parse');
      }
      const data: PatientRecord = patientFromPid(pid, 'HOSP');
      const euid = uuidv7();
      const id = uuidv7();
      const { golden, provenance } = computeGolden(
        [{ id, authority: data.authority, mrn: data.mrn ?? '', dataTime, data }],
        survivorship,
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
      recordRows.push({ id, authority: data.authority, mrn: data.mrn, person_euid: euid, data });
      // The blocking keys the engine stores for a record (probabilistic identity on arrival).
      for (const key of new Set(resolver.blockKeys(data))) {
        blockRows.push({ key, source_record_id: id });
      }
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
    }
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO "mpi_person" ("euid", "status", "merged_into", "golden", "provenance", "family_name",
         "given_name", "birth_date", "sex", "version", "created_at", "updated_at")
       SELECT x."euid", 'active', NULL, x."golden", x."provenance", x."family_name", x."given_name",
         x."birth_date", x."sex", 0, $2::timestamptz, $2::timestamptz
       FROM jsonb_to_recordset($1::jsonb) AS x("euid" uuid, "golden" jsonb, "provenance" jsonb,
         "family_name" text, "given_name" text, "birth_date" text, "sex" text)`,
      [JSON.stringify(personRows), stamp],
    );
    await db.query(
      `INSERT INTO "mpi_source_record" ("id", "authority", "mrn", "person_euid", "status", "merged_into",
         "data", "data_time", "last_message_id", "version", "created_at", "updated_at")
       SELECT x."id", x."authority", x."mrn", x."person_euid", 'active', NULL, x."data", $2::bigint,
         NULL, 0, $3::timestamptz, $3::timestamptz
       FROM jsonb_to_recordset($1::jsonb) AS x("id" uuid, "authority" text, "mrn" text,
         "person_euid" uuid, "data" jsonb)`,
      [JSON.stringify(recordRows), dataTime, stamp],
    );
    await db.query(
      `INSERT INTO "mpi_identifier" ("source_record_id", "authority", "value", "type", "retired")
       SELECT x."source_record_id", x."authority", x."value", x."type", false
       FROM jsonb_to_recordset($1::jsonb) AS x("source_record_id" uuid, "authority" text,
         "value" text, "type" text)`,
      [JSON.stringify(identifierRows)],
    );
    await db.query(
      `INSERT INTO "mpi_block" ("key", "source_record_id")
       SELECT x."key", x."source_record_id"
       FROM jsonb_to_recordset($1::jsonb) AS x("key" text, "source_record_id" uuid)`,
      [JSON.stringify(blockRows)],
    );
    await db.query('COMMIT');
    const done = Math.min(n, from + chunk);
    if (done % 20000 === 0 || done === n) {
      log(
        `  preloaded ${done.toLocaleString('en-US')} persons (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  }
  log('  VACUUM ANALYZE of the MPI tables');
  for (const t of ['mpi_person', 'mpi_source_record', 'mpi_identifier', 'mpi_block']) {
    await db.query(`VACUUM ANALYZE "${t}"`);
  }
  return { persons, seconds: (performance.now() - started) / 1000 };
}

/* ------------------------------------------------------------------ stream */

interface MixPercent {
  a08: number;
  a01: number;
  a03: number;
  oru: number;
  a04: number;
  a40: number;
  a31: number;
  a28: number;
}

/** What the stream must produce once applied. */
interface Expected {
  triggers: Record<string, number>;
  /** Persons created by the stream (A04/A28 of new patients, links excluded). */
  newPersons: number;
  /** A04 from the second authority that must join an existing person. */
  links: number;
  merges: number;
}

interface Stream {
  texts: string[];
  expected: Expected;
}

/**
 * The message stream, in arrival order. Percentages (of --messages): A08 updates of existing
 * persons (a third of them with a new address or phone), A01 admissions and A03 discharges with
 * PV1-19 visit numbers, ORU^R01 with 3-8 OBX, A04 registrations of new patients (a share of
 * them from CLINIC sharing SSN + birth date + sex with an existing HOSP person: the
 * deterministic rule links them), A40 merges of two existing HOSP persons, A31 updates and A28
 * new persons.
 */
function generateStream(
  count: number,
  persons: Person[],
  mix: MixPercent,
  linkShare: number,
  rand: () => number,
): Stream {
  const preloaded = persons.length;
  const pool: number[] = persons.map((_, i) => i);
  const openVisits: number[] = [];
  const expected: Expected = { triggers: {}, newPersons: 0, links: 0, merges: 0 };
  let visitSeq = 0;
  let orderSeq = 0;
  let clinicSeq = 0;
  const texts: string[] = [];
  const pick = (filter: (p: Person, i: number) => boolean, tries = 200): number | undefined => {
    for (let t = 0; t < tries; t++) {
      const i = pool[Math.floor(rand() * pool.length)];
      if (!persons[i].gone && filter(persons[i], i)) {
        return i;
      }
    }
    return undefined;
  };
  const anyone = () => pick(() => true)!;
  const preloadedFree = (p: Person, i: number) => !p.reserved && i < preloaded;
  const bounds = [
    ['A08', mix.a08],
    ['A01', mix.a01],
    ['A03', mix.a03],
    ['ORU', mix.oru],
    ['A04', mix.a04],
    ['A40', mix.a40],
    ['A31', mix.a31],
    ['A28', mix.a28],
  ] as const;
  const total = bounds.reduce((s, [, pct]) => s + pct, 0);

  for (let n = 0; n < count; n++) {
    const ms = STREAM_START_MS + n * 1000;
    const ts = hl7Time(ms);
    const control = `PB${String(n + 1).padStart(7, '0')}`;
    let r = rand() * total;
    let kind: (typeof bounds)[number][0] = 'A08';
    for (const [k, pct] of bounds) {
      if (r < pct) {
        kind = k;
        break;
      }
      r -= pct;
    }
    if (kind === 'A03' && openVisits.length === 0) {
      kind = 'A01';
    }
    let text: string;
    let trigger: string = kind;
    switch (kind) {
      case 'A08':
      case 'A31': {
        const p = persons[anyone()];
        if (kind === 'A08' && rand() < 1 / 3) {
          if (rand() < 0.5) {
            p.line1 = streetLine(rand);
          } else {
            p.phone = phoneFor(rand);
          }
        }
        text = adt(p, kind, kind === 'A08' ? 'ADT_A01' : 'ADT_A05', ts, control, [
          ...(p.openVisit ? [pv1('I', p.openVisit, ts)] : []),
        ]);
        break;
      }
      case 'A01': {
        const i = pick((p) => !p.openVisit)!;
        const p = persons[i];
        p.openVisit = `V${String(++visitSeq).padStart(8, '0')}`;
        openVisits.push(i);
        text = adt(p, 'A01', 'ADT_A01', ts, control, [pv1('I', p.openVisit, ts)]);
        break;
      }
      case 'A03': {
        const k = Math.floor(rand() * openVisits.length);
        const i = openVisits[k];
        openVisits[k] = openVisits[openVisits.length - 1];
        openVisits.pop();
        const p = persons[i];
        const visit = p.openVisit!;
        p.openVisit = undefined;
        text = adt(p, 'A03', 'ADT_A03', ts, control, [pv1('I', visit, undefined, ts)]);
        break;
      }
      case 'ORU': {
        const p = persons[anyone()];
        text = oru(p, ts, control, ++orderSeq, rand);
        trigger = 'R01';
        break;
      }
      case 'A04':
      case 'A28': {
        const i = persons.length;
        let p: Person;
        const target =
          kind === 'A04' && rand() < linkShare
            ? pick((c, ci) => preloadedFree(c, ci) && c.ssn !== undefined)
            : undefined;
        if (target !== undefined) {
          // The same person registered at the clinic: same SSN, birth date and sex.
          const t = persons[target];
          t.reserved = true;
          p = {
            ...makePerson(i, 'CLINIC', `C${String(++clinicSeq).padStart(7, '0')}`, rand),
            family: t.family,
            given: t.given,
            middle: t.middle,
            dob: t.dob,
            sex: t.sex,
            ssn: t.ssn,
            reserved: true,
          };
          expected.links++;
        } else {
          p = makePerson(i, 'HOSP', `M${String(i + 1).padStart(8, '0')}`, rand);
          expected.newPersons++;
        }
        persons.push(p);
        pool.push(i);
        const visit =
          kind === 'A04' ? [pv1('O', `V${String(++visitSeq).padStart(8, '0')}`, ts)] : [];
        text = adt(p, kind, kind === 'A04' ? 'ADT_A01' : 'ADT_A05', ts, control, visit);
        break;
      }
      case 'A40': {
        const s = pick(preloadedFree);
        const survivor = s === undefined ? undefined : persons[s];
        if (survivor) {
          survivor.reserved = true;
        }
        const q = pick(preloadedFree);
        if (!survivor || q === undefined) {
          throw new Error('no persons left to merge: raise --persons or lower the merge share');
        }
        const prior = persons[q];
        prior.reserved = true;
        prior.gone = true;
        expected.merges++;
        text = adt(survivor, 'A40', 'ADT_A39', ts, control, [
          `MRG|${prior.mrn}^^^${prior.authority}^MR`,
        ]);
        break;
      }
    }
    expected.triggers[trigger] = (expected.triggers[trigger] ?? 0) + 1;
    texts.push(text);
  }
  return { texts, expected };
}

function msh(p: Person, type: string, ts: string, control: string): string {
  const sender = p.authority === 'HOSP' ? 'ADT1|HOSP' : 'REG|CLINIC';
  return `MSH|^~\\&|${type.startsWith('ORU') ? 'LAB|HOSP' : sender}|ENGINE|DEST|${ts}||${type}|${control}|P|2.5.1`;
}

function adt(
  p: Person,
  trigger: string,
  structure: string,
  ts: string,
  control: string,
  rest: string[],
): string {
  return (
    [
      msh(p, `ADT^${trigger}^${structure}`, ts, control),
      `EVN|${trigger}|${ts}`,
      pidSegment(p),
      ...rest,
    ].join('\r') + '\r'
  );
}

function pv1(cls: string, visit: string, admit?: string, discharge?: string): string {
  const f = new Array<string>(46).fill('');
  f[0] = 'PV1';
  f[1] = '1';
  f[2] = cls;
  f[3] = cls === 'I' ? `W${visit.slice(-2)}^${visit.slice(-3)}^1^HOSP` : 'OPD^^^HOSP';
  f[4] = cls === 'I' ? 'EM' : 'EL';
  f[7] = `D${visit.slice(-3)}^${SURNAMES[visit.charCodeAt(visit.length - 1) % SURNAMES.length]}^ANN^^^DR`;
  f[10] = cls === 'I' ? 'MED' : 'OPD';
  f[18] = cls === 'I' ? 'IP' : 'OP';
  f[19] = visit;
  f[44] = admit ?? '';
  f[45] = discharge ?? '';
  if (discharge) {
    f[36] = '01';
  }
  return segment(f);
}

const TESTS: Array<[string, string, string, string, number, number]> = [
  ['2345-7', 'GLUCOSE', 'mg/dL', '70-99', 60, 180],
  ['2160-0', 'CREATININE', 'mg/dL', '0.6-1.3', 0.4, 2.5],
  ['2951-2', 'SODIUM', 'mmol/L', '135-145', 128, 150],
  ['2823-3', 'POTASSIUM', 'mmol/L', '3.5-5.1', 3, 6],
  ['2075-0', 'CHLORIDE', 'mmol/L', '98-107', 92, 112],
  ['2028-9', 'CARBON DIOXIDE', 'mmol/L', '22-29', 18, 32],
  ['3094-0', 'UREA NITROGEN', 'mg/dL', '7-20', 4, 40],
  ['17861-6', 'CALCIUM', 'mg/dL', '8.6-10.3', 7.5, 11.5],
];

function oru(p: Person, ts: string, control: string, order: number, rand: () => number): string {
  const k = 3 + Math.floor(rand() * 6);
  const placer = `P${String(order).padStart(8, '0')}`;
  const filler = `F${String(order).padStart(8, '0')}`;
  const segs = [
    msh(p, 'ORU^R01^ORU_R01', ts, control),
    pidSegment(p),
    `ORC|RE|${placer}^HOSP|${filler}^LAB`,
    `OBR|1|${placer}^HOSP|${filler}^LAB|${k > 5 ? '24323-8^COMPREHENSIVE METABOLIC PANEL' : '51990-0^BASIC METABOLIC PANEL'}^LN|||${ts}|||||||||D100^${p.family}^ANN^^^DR||||||${ts}|||F`,
  ];
  for (let j = 0; j < k; j++) {
    const [code, name, unit, range, lo, hi] = TESTS[j];
    const v = round(lo + rand() * (hi - lo), 1);
    const [low, high] = range.split('-').map(Number);
    const flag = v < low ? 'L' : v > high ? 'H' : 'N';
    segs.push(
      `OBX|${j + 1}|NM|${code}^${name}^LN||${v}|${unit}^^UCUM|${range}|${flag}|||F|||${ts}`,
    );
  }
  return segs.join('\r') + '\r';
}

/** Message rows as the gateway stores them: header fields, patient key, partition. */
function toRows(texts: string[], partitions: number): NewMessage[] {
  const receivedAt = new Date();
  return texts.map((text) => {
    const raw = Buffer.from(text, 'latin1');
    const msg = parseMessage(raw);
    const key = patientKey(msg);
    return {
      id: uuidv7(),
      feed: FEED,
      controlId: msg.controlId,
      type: msg.messageType,
      trigger: msg.triggerEvent,
      version: msg.version,
      sendingApplication: msg.sendingApplication,
      sendingFacility: msg.sendingFacility,
      receivingApplication: msg.receivingApplication,
      receivingFacility: msg.receivingFacility,
      receivedAt,
      remoteAddress: '127.0.0.1',
      partition: partitionOf(key, partitions),
      partitionKey: key,
      raw,
      contentHash: createHash('sha256').update(raw).digest('hex'),
      status: 'received',
      errorCode: null,
      errorReason: null,
      ackCode: 'AA',
    };
  });
}

/* ------------------------------------------------------------------ CPU accounting */

interface ProcCpu {
  comm: string;
  /** Seconds of user time. */
  user: number;
  /** Seconds of system time. */
  sys: number;
}

interface CpuSnapshot {
  procs: Map<number, ProcCpu>;
  machine: { busy: number; total: number; steal: number };
  self: { user: number; sys: number };
}

function readProcStat(pid: number): ProcCpu | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    return { comm, user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
  } catch {
    return undefined;
  }
}

function cpuSnapshot(): CpuSnapshot {
  const procs = new Map<number, ProcCpu>();
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name)) {
      const st = readProcStat(Number(name));
      if (st) {
        procs.set(Number(name), st);
      }
    }
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  const u = process.cpuUsage();
  return {
    procs,
    machine: {
      busy: (total - idle - iowait) / CLK_TCK,
      total: total / CLK_TCK,
      steal: steal / CLK_TCK,
    },
    self: { user: u.user / 1e6, sys: u.system / 1e6 },
  };
}

interface CpuUsage {
  worker_s: number;
  /** Of worker_s, in the kernel (socket writes and reads, wake-ups). */
  worker_sys_s: number;
  postgres_s: number;
  redis_s: number;
  bench_s: number;
  /** Everything else busy on the machine (other tenants, kernel threads). */
  other_s: number;
  machine_busy_pct: number;
  steal_pct: number;
}

function cpuDelta(a: CpuSnapshot, b: CpuSnapshot, workerPids: number[]): CpuUsage {
  const sum = (match: (pid: number, comm: string) => boolean) => {
    let user = 0;
    let sys = 0;
    for (const [pid, st] of b.procs) {
      if (match(pid, st.comm)) {
        const before = a.procs.get(pid);
        user += st.user - (before?.user ?? 0);
        sys += st.sys - (before?.sys ?? 0);
      }
    }
    return { user, sys, all: user + sys };
  };
  const machineTotal = b.machine.total - a.machine.total;
  const self = { user: b.self.user - a.self.user, sys: b.self.sys - a.self.sys };
  const inProcess = workerPids.length === 0;
  // In-process engines share this process: their CPU is the bench's.
  const worker = inProcess
    ? { ...self, all: self.user + self.sys }
    : sum((pid) => workerPids.includes(pid));
  const postgres = sum((_pid, comm) => comm === 'postgres').all;
  const redis = sum((_pid, comm) => comm.startsWith('redis-server')).all;
  const bench = inProcess ? 0 : self.user + self.sys;
  const busy = b.machine.busy - a.machine.busy;
  return {
    worker_s: round(worker.all),
    worker_sys_s: round(worker.sys),
    postgres_s: round(postgres),
    redis_s: round(redis),
    bench_s: round(bench),
    other_s: round(Math.max(0, busy - worker.all - postgres - redis - bench)),
    machine_busy_pct: round((100 * busy) / machineTotal, 1),
    steal_pct: round((100 * (b.machine.steal - a.machine.steal)) / machineTotal, 1),
  };
}

/** The plan PostgreSQL chooses for MpiStore.loadPending (same statement, partition 0). */
async function pendingPlan(db: Client, upTo: string): Promise<string> {
  const { rows } = await db.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN SELECT "id", "feed", "raw", "received_at" FROM "message" WHERE "partition" = $1 ` +
      `AND "status" = 'received' AND "id" <= $2 ORDER BY "partition", "id" LIMIT $3`,
    [0, upTo, 100],
  );
  return rows
    .map((r) => r['QUERY PLAN'])
    .filter((l) => /Scan|Sort/.test(l))
    .map((l) => l.trim().replace(/\s+\(cost.*$/, ''))
    .join(' / ');
}

/** Committed and rolled back transactions of the current database (pg_stat_database). */
async function pgTransactions(db: Client): Promise<{ commit: number; rollback: number }> {
  const { rows } = await db.query<{ c: string; r: string }>(
    `SELECT xact_commit AS c, xact_rollback AS r FROM pg_stat_database WHERE datname = current_database()`,
  );
  return { commit: Number(rows[0].c), rollback: Number(rows[0].r) };
}

/** Redis INFO commandstats: command → calls and microseconds inside Redis (server-wide). */
async function redisCommandStats(
  redis: Redis,
): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) {
      out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
    }
  }
  return out;
}

function commandStatsDelta(
  a: Map<string, { calls: number; usec: number }>,
  b: Map<string, { calls: number; usec: number }>,
): Array<{ cmd: string; calls: number; ms: number }> {
  const out: Array<{ cmd: string; calls: number; ms: number }> = [];
  for (const [cmd, v] of b) {
    const before = a.get(cmd) ?? { calls: 0, usec: 0 };
    if (v.calls > before.calls) {
      out.push({ cmd, calls: v.calls - before.calls, ms: round((v.usec - before.usec) / 1000, 1) });
    }
  }
  return out.sort((x, y) => y.ms - x.ms);
}

/* ------------------------------------------------------------------ phase timing */

interface Phase {
  calls: number;
  ms: number;
  items: number;
}

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Times methods of the pipeline by wrapping them on their prototypes (in-process engines
 * only). Wall time: with 16 partitions consumed concurrently, async phases overlap.
 */
class PhaseTimer {
  readonly phases = new Map<string, Phase>();

  add(name: string, ms: number, items = 0): void {
    const p = this.phases.get(name) ?? { calls: 0, ms: 0, items: 0 };
    p.calls++;
    p.ms += ms;
    p.items += items;
    this.phases.set(name, p);
  }

  wrap(
    proto: object,
    method: string,
    name: string | ((args: unknown[], result: unknown) => string),
    items?: (args: unknown[], result: unknown) => number,
  ): void {
    const target = proto as Record<string, AnyFn>;
    const original = target[method];
    if (typeof original !== 'function') {
      throw new Error(`cannot time ${method}: not a method`);
    }
    const record = (started: number, args: unknown[], result: unknown, failed: boolean) => {
      const label = typeof name === 'string' ? name : name(args, result);
      this.add(
        failed ? `${label} (failed)` : label,
        performance.now() - started,
        items?.(args, result) ?? 0,
      );
    };
    target[method] = function (this: unknown, ...args: unknown[]): unknown {
      const started = performance.now();
      const result = original.apply(this, args);
      if (result instanceof Promise) {
        return result.then(
          (value: unknown) => {
            record(started, args, value, false);
            return value;
          },
          (err: unknown) => {
            record(started, args, undefined, true);
            throw err;
          },
        );
      }
      record(started, args, result, false);
      return result;
    };
  }

  /** Wraps the pipeline's phases. */
  install(): void {
    const len = (v: unknown) => (Array.isArray(v) ? v.length : 0);
    this.wrap(InboundProcessor.prototype, 'handle', 'handle (batch: drain + job completion)', (a) =>
      len(a[1]),
    );
    this.wrap(PipelineService.prototype, 'drain', (_a, r) => `drain → ${String(r)}`);
    this.wrap(PipelineService.prototype, 'prepare', 'prepare (parse + normalize)', () => 1);
    this.wrap(MpiStore.prototype, 'loadPending', 'loadPending (SELECT message)', (_a, r) => len(r));
    this.wrap(MpiStore.prototype, 'hasPendingBefore', 'hasPendingBefore');
    this.wrap(MpiStore.prototype, 'isHeld', 'isHeld');
    this.wrap(MpiPipeline.prototype, 'applyBatch', 'applyBatch (prefetch + apply + flush)', (a) =>
      len(a[0]),
    );
    this.wrap(MpiStore.prototype, 'prefetch', 'prefetch (MPI reads)');
    this.wrap(MpiStore.prototype, 'flush', 'flush (MPI writes + status, 1 tx)', (a) => len(a[1]));
    this.wrap(Worker.prototype, 'getNextJob', (a) => {
      const opts = a[1] as { block?: boolean } | undefined;
      return opts?.block ? 'getNextJob (blocking)' : 'getNextJob (non-blocking)';
    });
    this.wrap(Job.prototype, 'moveToCompleted', 'job.moveToCompleted');
    this.wrap(Job.prototype, 'moveToDelayed', 'job.moveToDelayed');
    this.wrap(Job.prototype, 'moveToFailed', 'job.moveToFailed');
    this.wrapSql();
  }

  /**
   * Round trips to PostgreSQL by statement shape, from send to result: the pool's queries
   * (reads) and the flush transaction's client queries. pg-pool calls Client.query with a
   * callback: those calls are timed once, at the pool.
   */
  private wrapSql(): void {
    const shape = (text: unknown) =>
      `sql ${String(text)
        .replace(/\s+/g, ' ')
        .replace(/jsonb_to_recordset.*$/, 'jsonb_to_recordset(…)')
        .replace(/ WHERE .*$/, ' WHERE …')
        .slice(0, 60)}`;
    for (const proto of [Pool.prototype, Client.prototype] as object[]) {
      const target = proto as Record<string, AnyFn>;
      const original = target.query;
      const add = this.add.bind(this);
      target.query = function (this: unknown, ...args: unknown[]): unknown {
        const started = performance.now();
        const result = original.apply(this, args);
        if (result instanceof Promise) {
          const label = shape(
            typeof args[0] === 'object' ? (args[0] as { text?: string }).text : args[0],
          );
          return result.then(
            (value: unknown) => {
              add(label, performance.now() - started);
              return value;
            },
            (err: unknown) => {
              add(`${label} (failed)`, performance.now() - started);
              throw err;
            },
          );
        }
        return result;
      };
    }
  }

  report(elapsedS: number): string[] {
    const lines = [
      `phase                                         calls      items    Σ wall s   mean ms  Σ/elapsed %`,
    ];
    const rows = [...this.phases].sort((a, b) => b[1].ms - a[1].ms);
    for (const [name, p] of rows) {
      lines.push(
        [
          name.padEnd(44),
          String(p.calls).padStart(7),
          String(p.items).padStart(10),
          (p.ms / 1000).toFixed(2).padStart(10),
          (p.ms / p.calls).toFixed(2).padStart(9),
          ((100 * p.ms) / 1000 / elapsedS).toFixed(1).padStart(10),
        ].join(' '),
      );
    }
    // Failed calls (a lost optimistic-lock race, retried) count too.
    const get = (n: string) =>
      (this.phases.get(n)?.ms ?? 0) + (this.phases.get(`${n} (failed)`)?.ms ?? 0);
    const apply =
      get('applyBatch (prefetch + apply + flush)') -
      get('prefetch (MPI reads)') -
      get('flush (MPI writes + status, 1 tx)');
    lines.push(
      `derived: in-memory apply (applyBatch - prefetch - flush, all calls) ${(apply / 1000).toFixed(2)} s`,
      'Σ wall / elapsed above 100%: the partitions run concurrently, so async phases overlap.',
    );
    return lines;
  }

  toJson(): Record<string, { calls: number; s: number }> {
    const out: Record<string, { calls: number; s: number }> = {};
    for (const [name, p] of this.phases) {
      out[name] = { calls: p.calls, s: round(p.ms / 1000, 3) };
    }
    return out;
  }
}

/* ------------------------------------------------------------------ CPU profile */

const CATEGORIES: Array<[RegExp, string]> = [
  [/\/libs\/hl7\//, 'hl7 parse'],
  [/\/libs\/mpi\/src\/(from-hl7|normalize)/, 'normalize'],
  [/\/libs\/mpi\/src\/mpi-store/, 'mpi-store (SQL, row mapping)'],
  [/\/libs\/mpi\/src\//, 'mpi apply/match/survivorship'],
  [/\/apps\/worker\//, 'worker (processor, pipeline service)'],
  [/node_modules\/pg(-[a-z]+)?\//, 'pg driver'],
  [/node_modules\/(bullmq|ioredis|cluster-key-slot|redis-parser)\//, 'bullmq/ioredis'],
  [/node_modules\/typeorm\//, 'typeorm'],
  [/node_modules\/(pino|nestjs-pino|@nestjs)/, 'nest/pino'],
  [/node_modules\/uuid\//, 'uuid'],
  [/\/bench\//, 'bench itself (enqueue, polling)'],
];

const NODE_CORE = /^node:|^internal\//;

/**
 * Self time per category: a native frame (no URL: JSON, Buffer, RegExp builtins, socket writes)
 * or a frame of node's own modules counts for the nearest library or application caller. Also the top functions by self time.
 */
function summarizeProfile(profile: CpuProfile): string[] {
  const { byId, parent } = profileTree(profile);
  const categoryCache = new Map<number, string>();
  const categoryOf = (id: number): string => {
    const cached = categoryCache.get(id);
    if (cached !== undefined) {
      return cached;
    }
    const n = byId.get(id)!;
    const { functionName, url } = n.callFrame;
    let cat: string;
    if (functionName === '(idle)') {
      cat = '(idle)';
    } else if (functionName === '(garbage collector)') {
      cat = '(garbage collector)';
    } else if (functionName === '(program)') {
      cat = '(program: V8/native, unattributed)';
    } else if (functionName === '(root)') {
      cat = 'node core and natives without a library caller (event loop, socket callbacks)';
    } else if (url === '' || NODE_CORE.test(url)) {
      const p = parent.get(id);
      cat = p === undefined ? 'native (no caller)' : categoryOf(p);
    } else {
      cat = CATEGORIES.find(([re]) => re.test(url))?.[1] ?? 'other';
    }
    categoryCache.set(id, cat);
    return cat;
  };
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of selfMs) {
    const cat = categoryOf(id);
    total += ms;
    if (cat === '(idle)') {
      idle += ms;
      continue;
    }
    cats.set(cat, (cats.get(cat) ?? 0) + ms);
    const f = byId.get(id)!.callFrame;
    const where =
      f.url === '' ? '' : ` ${f.url.replace(/^.*\/(dist|node_modules)\//, '')}:${f.lineNumber + 1}`;
    const key = `${f.functionName || '(anonymous)'}${where}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
  }
  const busy = total - idle;
  const lines = [
    `CPU profile: ${(total / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s on CPU (${((100 * busy) / total).toFixed(0)}% of the interval)`,
    'category (self time; natives and node core counted for their caller)        s   % of CPU',
  ];
  for (const [cat, ms] of [...cats].sort((a, b) => b[1] - a[1])) {
    lines.push(
      `  ${cat.padEnd(52)} ${(ms / 1000).toFixed(2).padStart(7)} ${((100 * ms) / busy).toFixed(1).padStart(7)}`,
    );
  }
  lines.push('top functions by self time:');
  for (const [fn, ms] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    lines.push(
      `  ${(ms / 1000).toFixed(2).padStart(6)} s ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${fn}`,
    );
  }
  return lines;
}

/* ------------------------------------------------------------------ workers */

interface Workers {
  pids: number[];
  stop(): Promise<void>;
}

function startChildWorkers(n: number, env: Record<string, string>): Workers {
  const main = resolve(__dirname, '../apps/engine/src/main.js');
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, [main, 'worker'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // The engine logs (pino, JSON) to stdout: keep this process's stdout for the results.
    child.stdout?.pipe(process.stderr);
    child.once('exit', (code, signal) => {
      if (code !== 0 && signal === null) {
        log(`worker ${child.pid} exited with code ${code}`);
      }
    });
    children.push(child);
  }
  return {
    pids: children.map((c) => c.pid!),
    async stop() {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            return;
          }
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}

async function startInProcessWorkers(
  n: number,
  env: Record<string, string>,
  config: EngineConfig,
): Promise<Workers> {
  const settings = loadSettings(env);
  const engines: StartedEngine[] = [];
  for (let i = 0; i < n; i++) {
    engines.push(await startEngine(['worker'], { settings, engineConfig: config }));
  }
  return {
    pids: [],
    async stop() {
      for (const e of engines) {
        await e.app.close();
      }
    },
  };
}

/* ------------------------------------------------------------------ main */

interface Options {
  persons: string;
  messages: string;
  warmup: string;
  workers: string;
  inProcess: boolean;
  partitions?: string;
  batchSize?: string;
  databaseUrl?: string;
  keep: boolean;
  seed: string;
  rate: string;
  linkShare: string;
  merges: string;
  analyzeMessages: boolean;
  phases: boolean;
  cpuProf?: string;
  stallSeconds: string;
}

async function main(): Promise<void> {
  const defaults = validateEngineConfig({});
  const opts = new Command()
    .option('--persons <n>', 'persons preloaded into the MPI', '100000')
    .option('--messages <n>', 'messages measured', '20000')
    .option('--warmup <n>', 'messages processed before the clock starts (JIT, pools)', '500')
    .option('--workers <n>', 'worker processes (or in-process engines with --in-process)', '1')
    .option(
      '--in-process',
      'run the worker engines in this process (needed by --phases, --cpu-prof)',
    )
    .option('--partitions <n>', `inbound partitions (default ${defaults.engine.partitions})`)
    .option('--batch-size <n>', `worker.batchSize (default ${defaults.worker.batchSize})`)
    .option('--database-url <url>', 'use this (empty) database instead of a fresh one')
    .option('--keep', 'keep the fresh database at the end (its URL is printed)')
    .option('--seed <n>', 'seed of the generated people and stream', '1')
    .option('--rate <n>', 'enqueue at this many msgs/s (0 = every job at once)', '0')
    .option('--link-share <x>', 'share of A04 from the second authority (linked by SSN)', '0.3')
    .option('--merges <pct>', 'percent of A40 merges in the stream', '1')
    .option(
      '--no-analyze-messages',
      'leave the message table without statistics (default: VACUUM ANALYZE it with the backlog in it)',
    )
    .option('--phases', 'time the pipeline phases (with --in-process)')
    .option('--cpu-prof <dir>', 'write a CPU profile of the measured interval (with --in-process)')
    .option('--stall-seconds <s>', 'give up when nothing is processed for this long', '120')
    .parse()
    .opts<Options>();
  const num = (name: string, value: string | undefined, fallback: number): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isFinite(n) || n < 0) {
      throw new Error(`--${name}: expected a number >= 0, got ${value}`);
    }
    return n;
  };
  const personsN = num('persons', opts.persons, 0);
  if (personsN < 100) {
    throw new Error('--persons: at least 100 (links and merges pick among them)');
  }
  const messagesN = Math.max(1, num('messages', opts.messages, 0));
  const warmupN = num('warmup', opts.warmup, 0);
  const workersN = Math.max(1, num('workers', opts.workers, 1));
  const partitions = Math.max(1, num('partitions', opts.partitions, defaults.engine.partitions));
  const batchSize = Math.max(1, num('batch-size', opts.batchSize, defaults.worker.batchSize));
  const rate = num('rate', opts.rate, 0);
  const inProcess = opts.inProcess === true;
  if ((opts.phases || opts.cpuProf) && !inProcess) {
    throw new Error('--phases and --cpu-prof need --in-process');
  }
  const mergePct = num('merges', opts.merges, 1);
  if (mergePct > 5) {
    throw new Error('--merges: at most 5 (A40, A31 and A28 share the last 5%)');
  }
  // A31 and A28 take what A40 leaves of the last 5%.
  const mix: MixPercent = {
    a08: 40,
    a01: 12,
    a03: 8,
    oru: 20,
    a04: 15,
    a40: mergePct,
    a31: (5 - mergePct) / 2,
    a28: (5 - mergePct) / 2,
  };
  const rand = prng(num('seed', opts.seed, 1));
  const pressure = cpuPressure();
  log(
    `bench:pipeline: ${personsN.toLocaleString('en-US')} persons, ${messagesN.toLocaleString('en-US')} messages, ${workersN} worker(s) ${inProcess ? 'in-process' : 'as processes'}, ${partitions} partitions, batch ${batchSize}; PostgreSQL ${new URL(opts.databaseUrl ?? ADMIN_URL).host}, Redis ${new URL(REDIS_URL).host}`,
  );
  log(`  /proc/pressure/cpu before: ${pressure}`);

  const fresh = opts.databaseUrl ? undefined : await createTestDatabase(ADMIN_URL);
  const databaseUrl = opts.databaseUrl ?? fresh!.url;
  const prefix = `benchpl-${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
  const ds = createDataSource({ databaseUrl, poolSize: 4 });
  const db = new Client({ connectionString: databaseUrl });
  let workers: Workers | undefined;
  let queues: InboundQueues | undefined;
  const redis = new Redis(REDIS_URL);
  let profiler: Session | undefined;
  try {
    await ds.initialize(); // runs the migrations
    await db.connect();
    const { rows: existing } = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM "mpi_person") + (SELECT count(*) FROM "message") AS n`,
    );
    if (Number(existing[0].n) > 0) {
      throw new Error('the database is not empty (the bench needs a freshly migrated one)');
    }

    log('preloading the MPI');
    const pre = await preload(db, personsN, rand, 5000);
    log(
      `  ${personsN.toLocaleString('en-US')} persons in ${pre.seconds.toFixed(1)} s (${Math.round(personsN / pre.seconds).toLocaleString('en-US')}/s)`,
    );

    log('generating and storing the message stream');
    const stream = generateStream(
      warmupN + messagesN,
      pre.persons,
      mix,
      Math.min(1, num('link-share', opts.linkShare, 0.3)),
      rand,
    );
    const rows = toRows(stream.texts, partitions);
    const repo = new MessageRepository(ds);
    for (let i = 0; i < rows.length; i += 1000) {
      const res = await repo.insertBatch(rows.slice(i, i + 1000), { dedupWindowMs: 0 });
      if (res.some((r) => r.duplicate)) {
        throw new Error('a generated message was taken for a resend');
      }
    }
    const perPartition = new Array<number>(partitions).fill(0);
    rows.forEach((r) => perPartition[r.partition]++);
    log(
      `  ${rows.length.toLocaleString('en-US')} messages stored (${Object.entries(
        stream.expected.triggers,
      )
        .map(([t, c]) => `${t} ${c}`)
        .join(', ')}); per partition ${Math.min(...perPartition)}–${Math.max(...perPartition)}`,
    );
    if (opts.analyzeMessages) {
      await db.query(`VACUUM ANALYZE "message"`);
    }
    const plan = await pendingPlan(db, rows[rows.length - 1].id);
    log(`  loadPending plan: ${plan}`);
    await db.query('CHECKPOINT');

    log(`starting ${workersN} worker(s)`);
    const cfgFile = join(dir, 'engine.yaml');
    writeFileSync(
      cfgFile,
      `engine:\n  partitions: ${partitions}\nworker:\n  batchSize: ${batchSize}\nfeeds: []\n`,
    );
    const config = validateEngineConfig({
      engine: { partitions },
      worker: { batchSize },
      feeds: [],
    });
    const env = {
      HL7_CONFIG: cfgFile,
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      ADMIN_API_KEY: `bench-${randomBytes(12).toString('hex')}`,
      LOG_LEVEL: 'warn',
    };
    const timer = new PhaseTimer();
    if (opts.phases) {
      timer.install();
    }
    workers = inProcess
      ? await startInProcessWorkers(workersN, env, config)
      : startChildWorkers(workersN, env);
    await waitForLeases(redis, prefix, partitions, workersN, 60_000, log);
    queues = new InboundQueues(loadSettings(env), config);
    await queues.ping();

    const enqueuedAt = new Map<string, number>();
    const toJob = (r: NewMessage): InboundJobData => ({
      messageId: r.id,
      feed: r.feed,
      partition: r.partition,
    });
    /**
     * Enqueues the jobs (arrival order; paced when `pace` > 0) and polls the database until only
     * `leaveReceived` messages are still `received`. Returns when the jobs were all sent.
     */
    const drive = async (
      jobs: InboundJobData[],
      leaveReceived: number,
      pace: number,
      quiet: boolean,
    ): Promise<{ enqueued: Promise<number> }> => {
      const t0 = performance.now();
      const enqueued = (async () => {
        const step = pace > 0 ? Math.max(1, Math.round(pace / 100)) : 500;
        for (let i = 0; i < jobs.length; i += step) {
          if (pace > 0) {
            const wait = t0 + (i / pace) * 1000 - performance.now();
            if (wait > 0) {
              await sleep(wait);
            }
          }
          const chunk = jobs.slice(i, i + step);
          const at = Date.now();
          chunk.forEach((j) => enqueuedAt.set(j.messageId, at));
          await queues!.enqueue(chunk);
        }
        return performance.now();
      })();
      let sent = false;
      void enqueued.then(() => (sent = true));
      const initial = jobs.length + leaveReceived;
      let lastPrint = t0;
      let lastDone = 0;
      let lastProgressAt = t0;
      let remaining = initial;
      for (;;) {
        await sleep(250);
        const { rows: r } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM "message" WHERE "status" = 'received'`,
        );
        const now = performance.now();
        const left = Number(r[0].n);
        if (left < remaining) {
          lastProgressAt = now;
        }
        remaining = left;
        const done = initial - remaining;
        if (remaining <= leaveReceived) {
          return { enqueued };
        }
        if (!quiet && now - lastPrint >= 1000) {
          const nowRate = Math.round(((done - lastDone) * 1000) / (now - lastPrint));
          const overall = Math.round((done * 1000) / (now - t0));
          log(
            `  ${((now - t0) / 1000).toFixed(1).padStart(6)} s  ${String(done).padStart(7)} processed  ${String(nowRate).padStart(6)} msgs/s now  ${String(overall).padStart(6)} msgs/s overall${sent ? '' : '  (enqueueing)'}`,
          );
          lastPrint = now;
          lastDone = done;
        }
        if (now - lastProgressAt > num('stall-seconds', opts.stallSeconds, 120) * 1000) {
          const { rows: stuck } = await db.query<{ partition: number; n: string }>(
            `SELECT "partition", count(*) AS n FROM "message" WHERE "status" = 'received' GROUP BY 1 ORDER BY 1`,
          );
          throw new Error(
            `no progress for ${opts.stallSeconds} s; still received by partition: ${stuck.map((x) => `${x.partition}:${x.n}`).join(' ')}`,
          );
        }
      }
    };

    if (warmupN > 0) {
      log(`warm-up: ${warmupN} messages before the clock`);
      await (
        await drive(rows.slice(0, warmupN).map(toJob), messagesN, 0, true)
      ).enqueued;
    }
    const measured = rows.slice(warmupN);
    enqueuedAt.clear();

    if (opts.cpuProf) {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
      await profiler.post('Profiler.start');
    }
    timer.phases.clear();

    // ---- measured interval ----
    log(`processing (${rate > 0 ? `${rate} msgs/s offered` : 'every job enqueued at once'})`);
    const cmd0 = await redisCommandStats(redis);
    const xact0 = await pgTransactions(db);
    const cpu0 = cpuSnapshot();
    const t0 = performance.now();
    const wall0 = Date.now();
    const { enqueued } = await drive(measured.map(toJob), 0, rate, false);
    const t1 = performance.now();
    const cpu1 = cpuSnapshot();
    const redisCalls = commandStatsDelta(cmd0, await redisCommandStats(redis));
    const enqueueDone = await enqueued;
    // ---- end of the measured interval ----

    const elapsed = (t1 - t0) / 1000;
    const msgsPerSec = measured.length / elapsed;
    const cpu = cpuDelta(cpu0, cpu1, workers.pids);
    let profileLines: string[] = [];
    if (profiler && opts.cpuProf) {
      const { profile } = await profiler.post('Profiler.stop');
      mkdirSync(opts.cpuProf, { recursive: true });
      const file = join(opts.cpuProf, `pipeline-${Date.now()}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      profileLines = [
        ...summarizeProfile(profile as unknown as CpuProfile),
        `profile written to ${file}`,
      ];
    }
    await workers.stop();
    workers = undefined;
    const xact1 = await pgTransactions(db);
    const planAfter = await pendingPlan(db, rows[rows.length - 1].id);
    const { rows: analyzed } = await db.query<{ n: string }>(
      `SELECT autoanalyze_count AS n FROM pg_stat_user_tables WHERE relname = 'message'`,
    );

    // The poll sees the end up to 250 ms late; updated_at is the last flush's transaction start.
    const { rows: lastFlush } = await db.query<{ at: string }>(
      `SELECT (extract(epoch FROM max("updated_at")) * 1000)::float8 AS at FROM "message"`,
    );
    const lastFlushS = (Number(lastFlush[0].at) - wall0) / 1000;

    // ---- checks ----
    const q = async (sql: string) => (await db.query<Record<string, string>>(sql)).rows;
    const statuses: Record<string, number> = {};
    for (const r of await q(`SELECT "status", count(*) AS n FROM "message" GROUP BY 1`)) {
      statuses[r.status] = Number(r.n);
    }
    const errorCodes = await q(
      `SELECT "error_code" AS code, count(*) AS n FROM "message" WHERE "status" = 'error' GROUP BY 1 ORDER BY 2 DESC`,
    );
    const ignored = await q(
      `SELECT "error_reason" AS reason, count(*) AS n FROM "message" WHERE "status" = 'ignored' GROUP BY 1 ORDER BY 2 DESC LIMIT 5`,
    );
    const events: Record<string, number> = {};
    for (const r of await q(
      `SELECT "type", count(*) AS n FROM "mpi_event" GROUP BY 1 ORDER BY 1`,
    )) {
      events[r.type] = Number(r.n);
    }
    const eventsTotal = Object.values(events).reduce((s, n) => s + n, 0);
    const persons: Record<string, number> = {};
    for (const r of await q(`SELECT "status", count(*) AS n FROM "mpi_person" GROUP BY 1`)) {
      persons[r.status] = Number(r.n);
    }
    const [linked] = await q(
      `SELECT count(*) AS n FROM "mpi_source_record" c
       WHERE c."authority" = 'CLINIC' AND EXISTS (SELECT 1 FROM "mpi_source_record" h
         WHERE h."person_euid" = c."person_euid" AND h."authority" = 'HOSP' AND h."status" = 'active')`,
    );
    const [mergedRecords] = await q(
      `SELECT count(*) AS n FROM "mpi_source_record" WHERE "status" = 'merged'`,
    );
    const [children] = await q(
      `SELECT (SELECT count(*) FROM "mpi_encounter") AS encounters, (SELECT count(*) FROM "mpi_result") AS results`,
    );
    const exp = stream.expected;
    const checks: Array<[string, number, number]> = [
      ['messages still received', statuses.received ?? 0, 0],
      ['messages in error', statuses.error ?? 0, 0],
      ['messages processed', statuses.processed ?? 0, rows.length],
      ['active persons', persons.active ?? 0, personsN + exp.newPersons - exp.merges],
      ['merged persons', persons.merged ?? 0, exp.merges],
      ['merged source records', Number(mergedRecords.n), exp.merges],
      ['CLINIC records linked to a HOSP person', Number(linked.n), exp.links],
    ];
    const failed = checks.filter(([, got, want]) => got !== want);

    // ---- latency: enqueue → processed_at ----
    const lat: number[] = [];
    for (const r of await q(
      `SELECT "id", (extract(epoch FROM "processed_at") * 1000)::float8 AS at FROM "message" WHERE "processed_at" IS NOT NULL`,
    )) {
      const e = enqueuedAt.get(r.id);
      if (e !== undefined) {
        lat.push(Number(r.at) - e);
      }
    }
    lat.sort((a, b) => a - b);
    const pct = (p: number) =>
      lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];

    // ---- report ----
    console.log(
      `${measured.length.toLocaleString('en-US')} messages in ${elapsed.toFixed(2)} s (last flush at ${lastFlushS.toFixed(2)} s) = ${Math.round(msgsPerSec).toLocaleString('en-US')} msgs/s (${workersN} worker(s) ${inProcess ? 'in-process' : 'as processes'}, ${partitions} partitions, batch ${batchSize}, ${personsN.toLocaleString('en-US')} persons preloaded); enqueue took ${((enqueueDone - t0) / 1000).toFixed(2)} s; ${warmupN} warm-up messages before the clock`,
    );
    console.log(
      `statuses ${JSON.stringify(statuses)}; errors ${JSON.stringify(errorCodes)}; ignored ${JSON.stringify(ignored)}`,
    );
    console.log(`events ${eventsTotal}: ${JSON.stringify(events)}`);
    console.log(
      `persons ${JSON.stringify(persons)}; encounters ${children.encounters}, results ${children.results}`,
    );
    console.log(
      `enqueue → processed_at: p50 ${pct(0.5).toFixed(0)} ms, p99 ${pct(0.99).toFixed(0)} ms, max ${(lat[lat.length - 1] ?? 0).toFixed(0)} ms`,
    );
    console.log(
      `CPU seconds over the interval: worker ${cpu.worker_s} (kernel ${cpu.worker_sys_s}), postgres ${cpu.postgres_s}, redis ${cpu.redis_s}, bench ${cpu.bench_s}, other ${cpu.other_s}; machine busy ${cpu.machine_busy_pct}% of ${(cpu1.machine.total - cpu0.machine.total) / elapsed > 0 ? Math.round((cpu1.machine.total - cpu0.machine.total) / elapsed) : '?'} CPUs, steal ${cpu.steal_pct}%`,
    );
    const redisTotal = redisCalls.reduce(
      (t, c) => ({ calls: t.calls + c.calls, ms: t.ms + c.ms }),
      {
        calls: 0,
        ms: 0,
      },
    );
    console.log(
      `Redis (server-wide) ${redisTotal.calls} commands, ${(redisTotal.ms / 1000).toFixed(2)} s inside Redis: ${redisCalls
        .slice(0, 6)
        .map((c) => `${c.cmd} ${c.calls} (${c.ms} ms)`)
        .join(', ')}`,
    );
    console.log(
      `PostgreSQL transactions of the run (after the clock, incl. the workers' shutdown): ${xact1.commit - xact0.commit} committed, ${xact1.rollback - xact0.rollback} rolled back`,
    );
    console.log(
      `loadPending plan before: ${plan}; after: ${planAfter} (autoanalyze of message during the run: ${analyzed[0]?.n ?? '?'})`,
    );
    for (const [name, got, want] of checks) {
      console.log(`check ${got === want ? 'ok  ' : 'FAIL'} ${name}: ${got} (expected ${want})`);
    }
    if (opts.phases) {
      timer.report(elapsed).forEach((l) => console.log(l));
    }
    profileLines.forEach((l) => console.log(l));
    if (opts.keep && fresh) {
      log(`database kept: ${databaseUrl}`);
    }
    const out: Record<string, unknown> = {
      msgs_per_sec: Math.round(msgsPerSec),
      messages: measured.length,
      warmup_messages: warmupN,
      persons_preloaded: personsN,
      workers: workersN,
      mode: inProcess ? 'in-process' : 'processes',
      partitions,
      batch_size: batchSize,
      elapsed_s: round(elapsed),
      last_flush_s: round(lastFlushS),
      statuses,
      events: eventsTotal,
      p50_ms: Math.round(pct(0.5)),
      p99_ms: Math.round(pct(0.99)),
      offered_rate: rate,
      persons: persons,
      links: Number(linked.n),
      cpu,
      pending_plan: /using (\S+)/.exec(plan)?.[1] ?? plan,
      redis_commands: redisTotal.calls,
      pg_commits: xact1.commit - xact0.commit,
      pg_rollbacks: xact1.rollback - xact0.rollback,
      cpu_pressure_before: pressure.replace(/^some /, ''),
      checks_ok: failed.length === 0,
    };
    if (opts.phases) {
      out.phases = timer.toJson();
    }
    console.log(JSON.stringify(out));
    if (failed.length > 0) {
      process.exitCode = 1;
    }
  } finally {
    if (profiler) {
      profiler.disconnect();
    }
    await workers?.stop().catch((err: Error) => log(`stopping workers: ${err.message}`));
    await queues?.onApplicationShutdown().catch(() => undefined);
    await db.end().catch(() => undefined);
    if (ds.isInitialized) {
      await ds.destroy();
    }
    redis.disconnect();
    await clearPrefix(REDIS_URL, prefix);
    rmSync(dir, { recursive: true, force: true });
    if (fresh && !opts.keep) {
      await fresh.drop();
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
