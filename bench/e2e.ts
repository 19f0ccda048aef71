/**
 * bench:e2e — end to end: an ADT/ORU stream in over MLLP → gateway → pipeline (MPI) → delivery
 * to two MLLP receivers, every role on this machine.
 *
 *   npm run bench:e2e -- [--rate 520] [--seconds 60] [--connections 8] [--workers 1]
 *                        [--patients 5000] [--concurrency 64] [--dest-connections 16]
 *
 * 1. A fresh PostgreSQL database (createTestDatabase, migrated here, dropped at the end), a
 *    random Redis queue prefix (its keys deleted at the end), two in-process MLLP sinks
 *    (scripts/sink-mllp.ts `startMllpSink`, port 0, answering AA) and an engine config in a
 *    temp dir: one feed on a free port, 16 partitions, destinations `ehr` and `ehr2` (MLLP,
 *    format hl7, ordering patient, --concurrency lanes per worker, --dest-connections sockets)
 *    and one route sending the feed's ADT^* and ORU^R01 to both.
 * 2. The roles as child processes (`dist/apps/engine/src/main.js gateway|worker|api`): one
 *    gateway, --workers worker processes (pipeline + delivery), one api.
 * 3. A stream about --patients fictitious people (a patient's first message is an A04; then
 *    A08 updates, A01/A03 visits and ORU^R01 results with 3-8 OBX) is sent at --rate msgs/s
 *    for --seconds over --connections MLLP connections (a patient always on the same one; one
 *    message outstanding per connection, as MLLP senders do: message i is due at t0 + i/rate
 *    and goes out when due and its connection's previous ACK is in).
 * 4. Clocks (one process, one monotonic clock): "received at the gateway" is the moment the
 *    client writes the frame (the gateway's own received_at is compared below); "delivered" is
 *    the moment a sink has built its ACK for the MSH-10 (the sink's output hook, called right
 *    before the ACK is written to the socket in the same tick). End-to-end latency per
 *    (message, sink) = sink ACK − client write.
 * 5. Figures: sustained msgs/s = messages delivered to both sinks per second in the steady
 *    window (from the end of the warm-up — the first 10% of the stream — to the last send);
 *    p50/p99/max end-to-end latency of the messages after the warm-up; drain time after the
 *    last send; per-sink counts, duplicates and per-patient order violations (per sink, each
 *    patient's MSH-10s must arrive in send order); delivery rows by status; per-stage times
 *    (client → gateway received_at, gateway ACK, received_at → processed_at, processed_at →
 *    sink ACK, sink ACK → delivered_at); CPU seconds per role, PostgreSQL and Redis (/proc),
 *    split into CPU per message (ingest + pipeline) and per delivery (from the intervals where
 *    deliveries ran alone, after the pipeline's backlog); PostgreSQL commits, WAL and Redis
 *    commands per message; delivery wake-up jobs created and waiting (BullMQ keys).
 * 6. Diagnostics: --worker-metrics runs the api role inside the first worker process, so that
 *    GET /metrics shows the worker's hl7_pipeline_* and hl7_delivery_* series (prom-client
 *    registries are per process); --cpu-prof DIR preloads a sampling profiler into the worker
 *    processes (engine code unchanged) and prints where their event loop's time goes.
 *
 * The sinks' per-message hook is their output line (`<time> #<n> <MSH-9> <MSH-10> <ACK>`); the
 * run stops with an error if that format changes. Exit code 1 when a delivery is missing,
 * duplicated or out of order (the throughput target is reported, not enforced).
 *
 * Progress every ~5 s on stderr; then the figures; then ONE JSON line:
 *   {"offered_msgs_per_sec":…,"sustained_msgs_per_sec":…,"p50_ms":…,"p99_ms":…,"max_ms":…,
 *    "messages":…,"duplicates":…,"order_violations":…, …}
 * No message content (patient data) is ever printed: only MSH-9, MSH-10 and counts.
 * Needs DATABASE_URL's server to allow CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/test).
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { encodeMllp, MllpDecoder } from '@engine/hl7';
import { createDataSource } from '@engine/store';
import { createTestDatabase, type TestDatabase } from '@engine/store/testing';
import { type MllpSink, MLLP_SINK_DEFAULTS, startMllpSink } from '../scripts/sink-mllp';
import {
  clearPrefix,
  cpuPressure,
  type CpuProfile,
  freePort,
  prng,
  profileTree,
  waitForLeases,
  waitForPort,
} from './common';

const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const FEED = 'e2e';
const SINKS = ['ehr', 'ehr2'] as const;
/** MSH-7/EVN-2 of the first message; each next one is a second later. */
const STREAM_START_MS = Date.UTC(2025, 5, 1, 8, 0, 0);
const CLK_TCK = 100;
const WARMUP_SHARE = 0.1;
const CPUS = cpus().length;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const now = (): number => performance.now();

function pct(sorted: ArrayLike<number>, p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function sortedOf(xs: number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

/* ------------------------------------------------------------------ stream */

// Fictitious people: small lists combined with the person's index (as in bench/pipeline.ts).
// prettier-ignore
const SURNAMES = [
  'ALDER', 'BRANWELL', 'CASTOR', 'DELANEY', 'EVERLY', 'FENWICK', 'GARLAND', 'HOLLOWAY',
  'IVERSON', 'JESSOP', 'KINCAID', 'LOCKHART', 'MARLOWE', 'NORCROSS', 'OAKLEY', 'PEMBERTON',
  'QUINLAN', 'ROWNTREE', 'STANHOPE', 'THORNBURY', 'UPWOOD', 'VANCE', 'WHITLOCK', 'YARDLEY',
];
const SURNAME_SUFFIX = ['', 'SON', 'TON', 'LEY', 'FORD', 'WOOD', 'MAN', 'BY', 'WELL', 'HAM'];
// prettier-ignore
const GIVEN = [
  'ADA', 'BEATRIX', 'CLARA', 'DELIA', 'EDITH', 'FLORA', 'GRETA', 'HELENA', 'IRIS', 'JUNE',
  'ALBERT', 'BASIL', 'CEDRIC', 'DESMOND', 'EDGAR', 'FELIX', 'GILBERT', 'HORACE', 'IVOR', 'JASPER',
];
const STREETS = ['MAIN', 'OAK', 'ELM', 'MAPLE', 'CEDAR', 'PINE', 'LAKE', 'HILL', 'BIRCH', 'MILL'];
const TOWNS: Array<[string, string, string]> = [
  ['SPRINGFIELD', 'IL', '627'],
  ['RIVERTON', 'OH', '432'],
  ['FAIRVIEW', 'PA', '152'],
  ['LAKEWOOD', 'NY', '122'],
  ['GREENVILLE', 'SC', '296'],
];

interface Patient {
  mrn: string;
  pid: string;
  registered: boolean;
  openVisit?: string;
  /** Connection this patient's messages go on. */
  conn: number;
}

function makePatient(i: number, rand: () => number, connections: number): Patient {
  const sex = i % 2 === 0 ? 'F' : 'M';
  const given = GIVEN[(sex === 'F' ? 0 : 10) + Math.floor(rand() * 10)];
  const family = `${SURNAMES[i % SURNAMES.length]}${SURNAME_SUFFIX[Math.floor(i / SURNAMES.length) % SURNAME_SUFFIX.length]}`;
  const dob = `${1930 + Math.floor(rand() * 90)}${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`;
  const [city, state, zip] = TOWNS[Math.floor(rand() * TOWNS.length)];
  const street = `${1 + Math.floor(rand() * 9899)} ${STREETS[Math.floor(rand() * STREETS.length)]} ST`;
  const phone = `(217)555-${String(Math.floor(rand() * 10000)).padStart(4, '0')}`;
  const ssn =
    rand() < 0.7
      ? `${101 + (i % 500)}-${String(11 + (Math.floor(i / 500) % 88)).padStart(2, '0')}-${String(1001 + Math.floor(i / 44000)).padStart(4, '0')}`
      : '';
  const mrn = `E${String(i + 1).padStart(7, '0')}`;
  const f = new Array<string>(20).fill('');
  f[0] = 'PID';
  f[1] = '1';
  f[3] = `${mrn}^^^HOSP^MR`;
  f[5] = `${family}^${given}^${String.fromCharCode(65 + (i % 26))}^^^^L`;
  f[7] = dob;
  f[8] = sex;
  f[11] = `${street}^^${city}^${state}^${zip}${String(i % 100).padStart(2, '0')}^USA^H`;
  f[13] = `${phone}^PRN^PH`;
  f[15] = 'ENG';
  f[19] = ssn;
  while (f.length > 1 && f[f.length - 1] === '') {
    f.pop();
  }
  return { mrn, pid: f.join('|'), registered: false, conn: i % connections };
}

function hl7Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

function pv1(cls: 'I' | 'O', visit: string, admit: string, discharge?: string): string {
  const f = new Array<string>(46).fill('');
  f[0] = 'PV1';
  f[1] = '1';
  f[2] = cls;
  f[3] = cls === 'I' ? `W${visit.slice(-2)}^${visit.slice(-3)}^1^HOSP` : 'OPD^^^HOSP';
  f[10] = cls === 'I' ? 'MED' : 'OPD';
  f[19] = visit;
  f[44] = admit;
  f[45] = discharge ?? '';
  let end = f.length;
  while (end > 1 && f[end - 1] === '') {
    end--;
  }
  return f.slice(0, end).join('|');
}

const TESTS: Array<[string, string, string, number, number]> = [
  ['2345-7', 'GLUCOSE', 'mg/dL', 60, 180],
  ['2160-0', 'CREATININE', 'mg/dL', 0.4, 2.5],
  ['2951-2', 'SODIUM', 'mmol/L', 128, 150],
  ['2823-3', 'POTASSIUM', 'mmol/L', 3, 6],
  ['2075-0', 'CHLORIDE', 'mmol/L', 92, 112],
  ['2028-9', 'CARBON DIOXIDE', 'mmol/L', 18, 32],
  ['3094-0', 'UREA NITROGEN', 'mg/dL', 4, 40],
  ['17861-6', 'CALCIUM', 'mg/dL', 7.5, 11.5],
];

interface Stream {
  /** MLLP frames, in send order. */
  frames: Buffer[];
  /** Patient index of each message. */
  patientOf: Int32Array;
  /** Connection of each message. */
  connOf: Int32Array;
  triggers: Record<string, number>;
}

/** Message i has MSH-10 `controlId(i)`; the index is read back from it at the sinks. */
const controlId = (i: number): string => `X${String(i).padStart(8, '0')}`;
const indexOf = (cid: string): number => (/^X\d{8}$/.test(cid) ? Number(cid.slice(1)) : -1);

function generateStream(
  count: number,
  patientsN: number,
  connections: number,
  rand: () => number,
): Stream {
  const patients = Array.from({ length: patientsN }, (_, i) => makePatient(i, rand, connections));
  const frames: Buffer[] = [];
  const patientOf = new Int32Array(count);
  const connOf = new Int32Array(count);
  const triggers: Record<string, number> = {};
  let visits = 0;
  let orders = 0;
  for (let n = 0; n < count; n++) {
    const pi = Math.floor(rand() * patientsN);
    const p = patients[pi];
    const ts = hl7Time(STREAM_START_MS + n * 1000);
    const cid = controlId(n);
    const header = (sender: string, type: string) =>
      `MSH|^~\\&|${sender}|ENGINE|DEST|${ts}||${type}|${cid}|P|2.5.1`;
    let segs: string[];
    let trigger: string;
    const r = rand();
    if (!p.registered) {
      p.registered = true;
      trigger = 'A04';
      segs = [
        header('ADT1|HOSP', 'ADT^A04^ADT_A01'),
        `EVN|A04|${ts}`,
        p.pid,
        pv1('O', `V${String(++visits).padStart(8, '0')}`, ts),
      ];
    } else if (r < 0.45) {
      trigger = 'A08';
      segs = [
        header('ADT1|HOSP', 'ADT^A08^ADT_A01'),
        `EVN|A08|${ts}`,
        p.pid,
        ...(p.openVisit ? [pv1('I', p.openVisit, ts)] : []),
      ];
    } else if (r < 0.75) {
      trigger = 'R01';
      const k = 3 + Math.floor(rand() * 6);
      const order = ++orders;
      const placer = `P${String(order).padStart(8, '0')}`;
      const filler = `F${String(order).padStart(8, '0')}`;
      segs = [
        header('LAB|HOSP', 'ORU^R01^ORU_R01'),
        p.pid,
        `ORC|RE|${placer}^HOSP|${filler}^LAB`,
        `OBR|1|${placer}^HOSP|${filler}^LAB|51990-0^BASIC METABOLIC PANEL^LN|||${ts}|||||||||D100^LAB^ANN^^^DR||||||${ts}|||F`,
      ];
      for (let j = 0; j < k; j++) {
        const [code, name, unit, lo, hi] = TESTS[j];
        segs.push(
          `OBX|${j + 1}|NM|${code}^${name}^LN||${round(lo + rand() * (hi - lo), 1)}|${unit}^^UCUM|||||F|||${ts}`,
        );
      }
    } else if (!p.openVisit) {
      trigger = 'A01';
      p.openVisit = `V${String(++visits).padStart(8, '0')}`;
      segs = [
        header('ADT1|HOSP', 'ADT^A01^ADT_A01'),
        `EVN|A01|${ts}`,
        p.pid,
        pv1('I', p.openVisit, ts),
      ];
    } else {
      trigger = 'A03';
      const visit = p.openVisit;
      p.openVisit = undefined;
      segs = [
        header('ADT1|HOSP', 'ADT^A03^ADT_A03'),
        `EVN|A03|${ts}`,
        p.pid,
        pv1('I', visit, ts, ts),
      ];
    }
    triggers[trigger] = (triggers[trigger] ?? 0) + 1;
    frames.push(encodeMllp(Buffer.from(`${segs.join('\r')}\r`, 'latin1')));
    patientOf[n] = pi;
    connOf[n] = p.conn;
  }
  return { frames, patientOf, connOf, triggers };
}

/* ------------------------------------------------------------------ processes */

interface Role {
  name: string;
  child: ChildProcess;
}

function startRole(name: string, roles: string[], env: Record<string, string>): Role {
  const main = resolve(__dirname, '../apps/engine/src/main.js');
  const child = spawn(process.execPath, [main, ...roles], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The engine logs (pino, JSON) to stdout: keep this process's stdout for the results.
  child.stdout?.pipe(process.stderr);
  child.once('exit', (code, signal) => {
    if (!stopping && (code !== 0 || signal !== null)) {
      log(`${name} (pid ${child.pid}) exited with code ${code} signal ${signal}`);
    }
  });
  return { name, child };
}

async function stopRole(r: Role): Promise<void> {
  const { child } = r;
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/* ------------------------------------------------------------------ CPU accounting */

interface CpuSnapshot {
  procs: Map<number, { comm: string; cpu: number }>;
  busy: number;
  total: number;
  self: number;
}

function cpuSnapshot(): CpuSnapshot {
  const procs = new Map<number, { comm: string; cpu: number }>();
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name)) {
      try {
        const text = readFileSync(`/proc/${name}/stat`, 'utf8');
        const close = text.lastIndexOf(')');
        const f = text.slice(close + 2).split(' ');
        procs.set(Number(name), {
          comm: text.slice(text.indexOf('(') + 1, close),
          cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK,
        });
      } catch {
        // the process ended meanwhile
      }
    }
  }
  const c = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = c;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  const u = process.cpuUsage();
  return {
    procs,
    busy: (total - idle - iowait) / CLK_TCK,
    total: total / CLK_TCK,
    self: (u.user + u.system) / 1e6,
  };
}

function cpuDelta(
  a: CpuSnapshot,
  b: CpuSnapshot,
  roles: Role[],
): { seconds: number; byRole: Record<string, number>; machineBusyPct: number } {
  const sum = (match: (pid: number, comm: string) => boolean): number => {
    let s = 0;
    for (const [pid, st] of b.procs) {
      if (match(pid, st.comm)) {
        s += st.cpu - (a.procs.get(pid)?.cpu ?? 0);
      }
    }
    return s;
  };
  const byRole: Record<string, number> = {};
  let known = 0;
  for (const r of roles) {
    const pid = r.child.pid;
    const v = sum((p) => p === pid);
    const key = r.name.replace(/-\d+$/, '');
    byRole[key] = round((byRole[key] ?? 0) + v);
    known += v;
  }
  const pg = sum((_p, comm) => comm === 'postgres');
  const redis = sum((_p, comm) => comm.startsWith('redis-server'));
  const bench = b.self - a.self;
  const busy = b.busy - a.busy;
  byRole.postgres = round(pg);
  byRole.redis = round(redis);
  byRole.bench = round(bench);
  byRole.other = round(Math.max(0, busy - known - pg - redis - bench));
  return {
    seconds: b.total - a.total,
    byRole,
    machineBusyPct: round((100 * busy) / (b.total - a.total), 1),
  };
}

/** One progress interval: work done by each stage and CPU seconds by role. */
interface Interval {
  seconds: number;
  /** PostgreSQL commits (this database) and Redis commands (server-wide) in the interval. */
  commits: number;
  redisCommands: number;
  ingested: number;
  processed: number;
  deliveries: number;
  cpu: Record<string, number>;
}

/**
 * CPU milliseconds per unit of work, from the progress intervals. Deliveries go on after the
 * pipeline has drained its backlog: the intervals with deliveries only (nothing ingested or
 * processed) give the CPU per delivery; what the other intervals used beyond that is charged to
 * ingest + pipeline, per message processed. Undefined without such intervals (the run kept up).
 */
function attributeCpu(
  intervals: Interval[],
  key: (cpu: Record<string, number>) => number,
): { perDelivery: number; perMessage: number; deliveryOnlyS: number } | undefined {
  const only = intervals.filter(
    (iv) => iv.ingested === 0 && iv.processed === 0 && iv.deliveries > 0,
  );
  const rest = intervals.filter((iv) => !only.includes(iv));
  const deliveries = only.reduce((t, iv) => t + iv.deliveries, 0);
  const processed = rest.reduce((t, iv) => t + iv.processed, 0);
  if (deliveries < 1000 || processed < 1000) {
    return undefined;
  }
  const perDelivery = (only.reduce((t, iv) => t + key(iv.cpu), 0) * 1000) / deliveries;
  const restCpu = rest.reduce((t, iv) => t + key(iv.cpu), 0) * 1000;
  const restDeliveries = rest.reduce((t, iv) => t + iv.deliveries, 0);
  return {
    perDelivery,
    perMessage: (restCpu - perDelivery * restDeliveries) / processed,
    deliveryOnlyS: only.reduce((t, iv) => t + iv.seconds, 0),
  };
}

/* ------------------------------------------------------------------ worker CPU profile */

/**
 * Preloaded into the worker processes with --cpu-prof: samples every millisecond from start
 * and writes the profile when SIGTERM arrives (before Nest's shutdown handler re-raises it;
 * node's own --cpu-prof only writes on a normal exit).
 */
const PROFILER_PRELOAD = `
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
process.prependOnceListener('SIGTERM', () => {
  session.post('Profiler.stop', (err, res) => {
    if (!err) {
      writeFileSync(join(process.env.E2E_PROFILE_DIR, 'worker-' + process.pid + '.cpuprofile'), JSON.stringify(res.profile));
    }
  });
});
`;

/**
 * Native socket writes. The profile samples wall time: on a saturated machine a write that
 * wakes PostgreSQL or Redis is where the scheduler hands the CPU to them, so these samples are
 * mostly time the worker was runnable but off the CPU.
 */
const SOCKET_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String']);
const WRITES = 'socket writes (incl. time descheduled)';

/** Which engine task a stack belongs to (innermost recognisable frame wins). */
const TASKS: Array<[RegExp, string]> = [
  [/\/apps\/worker\/src\/delivery|\/libs\/routing\/|\/libs\/queue\/src\/delivery/, 'delivery'],
  [/\/libs\/mpi\/|\/apps\/worker\/src\/(pipeline|inbound)|\/libs\/queue\/src\/inbound/, 'pipeline'],
];
const LIBS: Array<[RegExp, string]> = [
  [/node_modules\/pg(-[a-z]+)?\//, 'pg driver'],
  [/node_modules\/(bullmq|ioredis|cluster-key-slot|redis-parser)\//, 'bullmq/ioredis'],
  [/node_modules\/typeorm\//, 'typeorm'],
  [/node_modules\/(pino|nestjs-pino|@nestjs|prom-client)/, 'nest/pino/prom'],
  [/\/libs\/hl7\//, 'hl7'],
  [/\/libs\/mpi\//, 'mpi'],
  [/\/libs\/routing\//, 'routing'],
  [/\/apps\/worker\//, 'worker app'],
];

/**
 * Summary of a worker's profile over [fromUs, toUs] (profile clock, µs): self time by library
 * and by task (pipeline / delivery / I/O callbacks without either on the stack), GC, and the
 * event loop's busy stretches (consecutive samples off idle): how long other work waits.
 */
function summarizeProfile(profile: CpuProfile, fromUs: number, toUs: number): string[] {
  const { byId, parent } = profileTree(profile);
  const memo = new Map<number, { lib: string; task: string }>();
  const classify = (id: number): { lib: string; task: string } => {
    const hit = memo.get(id);
    if (hit) {
      return hit;
    }
    const { functionName, url } = byId.get(id)!.callFrame;
    let out: { lib: string; task: string };
    if (
      functionName === '(idle)' ||
      functionName === '(garbage collector)' ||
      functionName === '(program)'
    ) {
      out = { lib: functionName, task: functionName };
    } else if (url === '' && SOCKET_WRITES.has(functionName)) {
      out = { lib: WRITES, task: WRITES };
    } else {
      const p = parent.get(id);
      const up =
        p === undefined
          ? { lib: 'node core / native', task: 'callbacks (no task on the stack)' }
          : classify(p);
      const lib = LIBS.find(([re]) => re.test(url))?.[1];
      const task = TASKS.find(([re]) => re.test(url))?.[1];
      out = { lib: lib ?? up.lib, task: task ?? up.task };
    }
    memo.set(id, out);
    return out;
  };
  const libs = new Map<string, number>();
  const tasks = new Map<string, number>();
  const stretches: Array<{ ms: number; task: Map<string, number> }> = [];
  let cur: { ms: number; task: Map<string, number> } | undefined;
  let t = profile.startTime;
  let busy = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) {
      continue;
    }
    const ms = dt / 1000;
    total += ms;
    const c = classify(profile.samples[i]);
    if (c.task === '(idle)') {
      if (cur) {
        stretches.push(cur);
        cur = undefined;
      }
      continue;
    }
    busy += ms;
    libs.set(c.lib, (libs.get(c.lib) ?? 0) + ms);
    tasks.set(c.task, (tasks.get(c.task) ?? 0) + ms);
    cur ??= { ms: 0, task: new Map() };
    cur.ms += ms;
    cur.task.set(c.task, (cur.task.get(c.task) ?? 0) + ms);
  }
  if (cur) {
    stretches.push(cur);
  }
  const share = (m: Map<string, number>): string => {
    const all = [...m.values()].reduce((a, v) => a + v, 0);
    return [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${((100 * v) / all).toFixed(0)}%`)
      .join(', ');
  };
  const lengths = sortedOf(stretches.map((x) => x.ms));
  const over = (limit: number) => stretches.filter((x) => x.ms > limit);
  const longTasks = new Map<string, number>();
  for (const x of over(20)) {
    for (const [k, v] of x.task) {
      longTasks.set(k, (longTasks.get(k) ?? 0) + v);
    }
  }
  const sum = (xs: Array<{ ms: number }>) => xs.reduce((a, x) => a + x.ms, 0);
  return [
    `event loop busy ${(busy / 1000).toFixed(1)} s of ${(total / 1000).toFixed(1)} s wall time (${((100 * busy) / total).toFixed(0)}%; wall-clock samples, incl. time runnable but descheduled)`,
    `by task: ${share(tasks)}`,
    `by library (self time): ${share(libs)}`,
    `event-loop busy stretches: ${stretches.length}, p50 ${pct(lengths, 0.5).toFixed(1)} ms, p99 ${pct(lengths, 0.99).toFixed(1)} ms, max ${(lengths[lengths.length - 1] ?? 0).toFixed(0)} ms; ${((100 * sum(over(20))) / busy).toFixed(0)}% of the CPU time in stretches > 20 ms (${over(20).length}), ${((100 * sum(over(100))) / busy).toFixed(0)}% in stretches > 100 ms (${over(100).length}); stretches > 20 ms: ${share(longTasks)}`,
  ];
}

/* ------------------------------------------------------------------ PostgreSQL and Redis counters */

interface DbCounters {
  commits: number;
  /** Cluster-wide WAL (pg_stat_wal): other databases on the server count too. */
  walRecords: number;
  walBytes: number;
  walSyncs: number;
}

async function dbCounters(db: Client): Promise<DbCounters> {
  const { rows } = await db.query<{ c: string; r: string; b: string; s: string }>(
    `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS c,
            wal_records AS r, wal_bytes AS b, wal_sync AS s FROM pg_stat_wal`,
  );
  return {
    commits: Number(rows[0].c),
    walRecords: Number(rows[0].r),
    walBytes: Number(rows[0].b),
    walSyncs: Number(rows[0].s),
  };
}

/** Redis INFO commandstats: command → calls (server-wide). */
async function redisCalls(redis: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) {
      out.set(m[1], Number(m[2]));
    }
  }
  return out;
}

/** Wake-up jobs of a destination's delivery queue: waiting now, and created so far (BullMQ keys). */
async function wakeJobs(
  redis: Redis,
  prefix: string,
  destination: string,
): Promise<{ waiting: number; created: number }> {
  const q = `${prefix}:deliver-${destination}`;
  const [waiting, created] = await Promise.all([redis.llen(`${q}:wait`), redis.get(`${q}:id`)]);
  return { waiting, created: Number(created ?? 0) };
}

/* ------------------------------------------------------------------ sinks */

/** What one sink saw: first ACK time per message index, arrivals in order, duplicates. */
class SinkLog {
  readonly ackAt: Float64Array;
  count = 0;
  duplicates = 0;
  nonAa = 0;
  unknown = 0;
  orderViolations = 0;
  private readonly lastOfPatient: Int32Array;

  constructor(
    readonly id: string,
    total: number,
    patients: number,
    private readonly patientOf: Int32Array,
  ) {
    this.ackAt = new Float64Array(total).fill(NaN);
    this.lastOfPatient = new Int32Array(patients).fill(-1);
  }

  /**
   * The sink's output line: `<iso time> #<seq> <MSH-9> <MSH-10> <ACK code>…`, produced right
   * before the ACK is written (same tick). Only the type and control id are read.
   */
  onLine(line: string): void {
    const t = now();
    const parts = line.trimEnd().split(' ');
    const i = indexOf(parts[3] ?? '');
    if (parts[4] !== 'AA') {
      this.nonAa++;
    }
    if (i < 0 || i >= this.ackAt.length) {
      this.unknown++;
      return;
    }
    if (!Number.isNaN(this.ackAt[i])) {
      this.duplicates++;
      return;
    }
    this.ackAt[i] = t;
    this.count++;
    const p = this.patientOf[i];
    if (i < this.lastOfPatient[p]) {
      this.orderViolations++;
    } else {
      this.lastOfPatient[p] = i;
    }
  }
}

/* ------------------------------------------------------------------ load */

interface Load {
  sentAt: Float64Array;
  gwAckAt: Float64Array;
  sent: number;
  acked: number;
  naks: number;
  done: Promise<number>;
}

/**
 * Sends the stream: message i is due at t0 + i/rate; each connection sends its own messages in
 * stream order, one outstanding at a time (the next one when it is due and the previous ACK
 * is in). Resolves with the time of the last send.
 */
function startLoad(port: number, stream: Stream, connections: number, rate: number): Load {
  const total = stream.frames.length;
  const state: Load = {
    sentAt: new Float64Array(total).fill(NaN),
    gwAckAt: new Float64Array(total).fill(NaN),
    sent: 0,
    acked: 0,
    naks: 0,
    done: Promise.resolve(0),
  };
  const perConn: number[][] = Array.from({ length: connections }, () => []);
  for (let i = 0; i < total; i++) {
    perConn[stream.connOf[i]].push(i);
  }
  const t0 = now() + 50;
  const interval = 1000 / rate;
  state.done = Promise.all(
    perConn.map(
      (queue) =>
        new Promise<void>((ok, fail) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.setNoDelay(true);
          const decoder = new MllpDecoder();
          let k = 0;
          let outstanding = -1;
          let timer: NodeJS.Timeout | undefined;
          const next = (): void => {
            if (k >= queue.length) {
              socket.end();
              ok();
              return;
            }
            const i = queue[k];
            const wait = t0 + i * interval - now();
            const go = (): void => {
              timer = undefined;
              k++;
              outstanding = i;
              state.sentAt[i] = now();
              state.sent++;
              socket.write(stream.frames[i]);
            };
            if (wait > 1) {
              timer = setTimeout(go, wait);
            } else {
              go();
            }
          };
          socket.on('connect', next);
          socket.on('data', (chunk: Buffer) => {
            for (const ev of decoder.push(chunk)) {
              if (ev.type !== 'frame' || outstanding < 0) {
                continue;
              }
              state.gwAckAt[outstanding] = now();
              state.acked++;
              if (!ev.payload.includes('MSA|AA') && !ev.payload.includes('MSA|CA')) {
                state.naks++;
              }
              outstanding = -1;
              next();
            }
          });
          socket.on('error', (err) => {
            clearTimeout(timer);
            fail(err);
          });
          socket.on('close', () => {
            if (k < queue.length || outstanding >= 0) {
              clearTimeout(timer);
              fail(new Error('the gateway closed a connection before the stream was sent'));
            }
          });
        }),
    ),
  ).then(() => {
    let last = 0;
    for (let i = 0; i < total; i++) {
      last = Math.max(last, state.sentAt[i]);
    }
    return last;
  });
  return state;
}

/* ------------------------------------------------------------------ API */

interface DestinationView {
  id: string;
  counts: { pending: number; retrying: number; delivered: number; dead: number; skipped: number };
  lagSeconds: number;
}

async function apiGet(base: string, key: string, path: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(4000),
  });
}

async function destinations(base: string, key: string): Promise<DestinationView[] | undefined> {
  try {
    const res = await apiGet(base, key, '/api/destinations');
    if (!res.ok) {
      return undefined;
    }
    return ((await res.json()) as { items: DestinationView[] }).items;
  } catch {
    return undefined;
  }
}

/* ------------------------------------------------------------------ main */

let stopping = false;
const cleanups: Array<() => Promise<void>> = [];

async function cleanup(): Promise<void> {
  stopping = true;
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
  }
}

interface Options {
  rate: string;
  seconds: string;
  connections: string;
  workers: string;
  patients: string;
  concurrency: string;
  destConnections: string;
  partitions: string;
  seed: string;
  stallSeconds: string;
  drainSeconds: string;
  workerMetrics: boolean;
  cpuProf?: string;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option(
      '--rate <n>',
      'offered msgs/s over all connections (520: the 500 msgs/s target with headroom)',
      '520',
    )
    .option('--seconds <s>', 'seconds of sending', '60')
    .option('--connections <n>', 'MLLP connections to the gateway', '8')
    .option('--workers <n>', 'worker processes (pipeline + delivery)', '1')
    .option('--patients <n>', 'patients in the stream', '5000')
    .option('--concurrency <n>', 'destination concurrency (lanes in parallel)', '64')
    .option('--dest-connections <n>', 'MLLP connections per destination', '16')
    .option('--partitions <n>', 'inbound partitions', '16')
    .option('--seed <n>', 'seed of the people and the stream', '1')
    .option('--stall-seconds <s>', 'stop waiting when nothing is delivered for this long', '30')
    .option('--drain-seconds <s>', 'longest wait for the drain after the last send', '300')
    .option(
      '--worker-metrics',
      'run the api role inside the first worker process (its GET /metrics then has the hl7_delivery_* and hl7_pipeline_* series) instead of its own process',
    )
    .option(
      '--cpu-prof <dir>',
      'profile the worker processes (1 ms sampling) and print where their time goes; profiles are written to <dir>',
    )
    .parse()
    .opts<Options>();
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      throw new Error(`--${name}: expected a number >= ${min}, got ${v}`);
    }
    return n;
  };
  const rate = num('rate', opts.rate, 1);
  const seconds = num('seconds', opts.seconds, 1);
  const connections = Math.floor(num('connections', opts.connections, 1));
  const workersN = Math.floor(num('workers', opts.workers, 1));
  const patientsN = Math.floor(num('patients', opts.patients, 1));
  const concurrency = Math.floor(num('concurrency', opts.concurrency, 1));
  const destConnections = Math.floor(num('dest-connections', opts.destConnections, 1));
  const partitions = Math.floor(num('partitions', opts.partitions, 1));
  const stallMs = num('stall-seconds', opts.stallSeconds, 1) * 1000;
  const drainMs = num('drain-seconds', opts.drainSeconds, 1) * 1000;
  const total = Math.round(rate * seconds);
  const warmupN = Math.floor(total * WARMUP_SHARE);

  const pressureBefore = cpuPressure().replace(/^some /, '');
  log(
    `bench:e2e: ${rate} msgs/s offered for ${seconds} s (${total.toLocaleString('en-US')} messages, ${patientsN.toLocaleString('en-US')} patients) over ${connections} connection(s); 1 gateway, ${workersN} worker process(es), 1 api${opts.workerMetrics ? ' (inside worker-1)' : ''}; ${partitions} partitions; destinations ehr + ehr2 (MLLP, concurrency ${concurrency}, ${destConnections} connection(s)); PostgreSQL ${new URL(ADMIN_URL).host}, Redis ${new URL(REDIS_URL).host}`,
  );
  log(`  /proc/pressure/cpu before: ${pressureBefore}`);

  // ---- database, Redis prefix, sinks, config ----
  const fresh: TestDatabase = await createTestDatabase(ADMIN_URL);
  cleanups.push(() => fresh.drop());
  const databaseUrl = fresh.url;
  const ds = createDataSource({ databaseUrl, poolSize: 1 });
  await ds.initialize(); // runs the migrations once, before the roles start
  await ds.destroy();
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  cleanups.push(() => db.end());

  const prefix = `benche2e-${randomBytes(4).toString('hex')}`;
  cleanups.push(() => clearPrefix(REDIS_URL, prefix));
  const dir = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
    return Promise.resolve();
  });

  log('generating the stream');
  const stream = generateStream(total, patientsN, connections, prng(num('seed', opts.seed, 0)));
  log(
    `  ${Object.entries(stream.triggers)
      .map(([t, c]) => `${t} ${c}`)
      .join(', ')}`,
  );

  const sinkLogs = SINKS.map((id) => new SinkLog(id, total, patientsN, stream.patientOf));
  const sinks: MllpSink[] = [];
  for (const sl of sinkLogs) {
    const sink = await startMllpSink(
      { ...MLLP_SINK_DEFAULTS, host: '127.0.0.1', port: 0, quiet: false, verbose: false },
      {
        // Not printed: the per-message line (type, control id, ACK code) only feeds the log.
        out: (text) => sl.onLine(text),
        err: (text) => process.stderr.write(`${sl.id} sink: ${text}`),
      },
    );
    sinks.push(sink);
    cleanups.push(() => sink.close());
  }

  const feedPort = await freePort();
  const httpPort = await freePort();
  const cfgFile = join(dir, 'engine.yaml');
  const destination = (id: string, port: number) => `  - id: ${id}
    type: mllp
    host: 127.0.0.1
    port: ${port}
    format: hl7
    ordering: patient
    concurrency: ${concurrency}
    connections: ${destConnections}
    timeoutMs: 10000
`;
  writeFileSync(
    cfgFile,
    `engine:
  partitions: ${partitions}
feeds:
  - id: ${FEED}
    host: 127.0.0.1
    port: ${feedPort}
    accept: ['ADT^*', 'ORU^R01']
    maxConnections: 1000
destinations:
${destination('ehr', sinks[0].port)}${destination('ehr2', sinks[1].port)}
routes:
  - id: feed-to-ehrs
    source: { feed: ${FEED} }
    filter: { messageTypes: ['ADT^*', 'ORU^R01'] }
    destinations: [ehr, ehr2]
`,
  );
  const apiKey = `bench-${randomBytes(12).toString('hex')}`;
  const env = {
    HL7_CONFIG: cfgFile,
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    HTTP_PORT: String(httpPort),
    HTTP_HOST: '127.0.0.1',
    ADMIN_API_KEY: apiKey,
    LOG_LEVEL: 'warn',
  };

  // ---- roles ----
  log('starting the roles');
  const roles: Role[] = [];
  cleanups.push(async () => {
    await Promise.all(roles.map(stopRole));
  });
  const redis = new Redis(REDIS_URL);
  cleanups.push(() => {
    redis.disconnect();
    return Promise.resolve();
  });
  const gateway = startRole('gateway', ['gateway'], env);
  roles.push(gateway);
  let workerEnv: Record<string, string> = env;
  if (opts.cpuProf) {
    const preload = join(dir, 'profiler-preload.js');
    writeFileSync(preload, PROFILER_PRELOAD);
    mkdirSync(opts.cpuProf, { recursive: true });
    workerEnv = {
      ...env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`.trim(),
      E2E_PROFILE_DIR: resolve(opts.cpuProf),
    };
  }
  for (let w = 1; w <= workersN; w++) {
    roles.push(
      startRole(
        `worker-${w}`,
        w === 1 && opts.workerMetrics ? ['worker', 'api'] : ['worker'],
        workerEnv,
      ),
    );
  }
  const apiRole = opts.workerMetrics ? roles[1] : startRole('api', ['api'], env);
  if (!opts.workerMetrics) {
    roles.push(apiRole);
  }
  await waitForPort(feedPort, gateway.child);
  await waitForPort(httpPort, apiRole.child);
  await waitForLeases(redis, prefix, partitions, workersN, 60_000, log);
  const api = `http://127.0.0.1:${httpPort}`;
  const dests0 = await destinations(api, apiKey);
  if (!dests0 || dests0.length !== 2) {
    throw new Error('GET /api/destinations did not list the two destinations');
  }
  log(
    `  gateway pid ${gateway.child.pid}, workers ${roles
      .filter((r) => r.name.startsWith('worker'))
      .map((r) => r.child.pid)
      .join(' ')}, api ${apiRole.child.pid}; feed port ${feedPort}, API ${api}`,
  );

  // ---- load ----
  const LOOP_RES_MS = 10;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS });
  loop.enable();
  const db0 = await dbCounters(db);
  const redis0 = await redisCalls(redis);
  const cpu0 = cpuSnapshot();
  const wall0 = Date.now() - now(); // epoch ms = wall0 + now()
  log(`sending (${rate} msgs/s for ${seconds} s)`);
  const load = startLoad(feedPort, stream, connections, rate);
  let lastSend: number | undefined;
  let loadError: Error | undefined;
  load.done.then(
    (t) => (lastSend = t),
    (err: Error) => (loadError = err),
  );
  const both = (i: number): number => Math.max(sinkLogs[0].ackAt[i], sinkLogs[1].ackAt[i]);
  const deliveredBoth = (): number => {
    let n = 0;
    for (let i = 0; i < total; i++) {
      if (!Number.isNaN(both(i))) {
        n++;
      }
    }
    return n;
  };
  const started = now();
  const startedUs = Number(process.hrtime.bigint() / 1000n); // the profiles' clock (CLOCK_MONOTONIC)
  let prevSnap = cpu0;
  let prevDb = db0;
  let prevRedis = [...redis0.values()].reduce((a, n) => a + n, 0);
  const intervals: Interval[] = [];
  let prev = { acked: 0, processed: 0, deliveries: 0 };
  let lastPrint = started;
  let lastDelivered = 0;
  let lastProgress = started;
  let lastTotalDelivered = 0;
  let drainEnd: number | undefined;
  let endReason = 'all delivered';
  for (;;) {
    await sleep(250);
    if (loadError) {
      throw loadError;
    }
    const t = now();
    const delivered = sinkLogs[0].count + sinkLogs[1].count;
    if (delivered > lastTotalDelivered) {
      lastTotalDelivered = delivered;
      lastProgress = t;
    }
    if (sinkLogs.some((s) => s.unknown > 100 && s.count === 0)) {
      throw new Error(
        "the sinks' output lines no longer carry the MSH-10 where this bench reads it (scripts/sink-mllp.ts changed?)",
      );
    }
    const allDone = sinkLogs.every((s) => s.count >= total);
    if (t - lastPrint >= 5000 || (allDone && lastSend !== undefined)) {
      const b = deliveredBoth();
      const [counts, dests] = await Promise.all([
        db
          .query<{ received: string; stored: string }>(
            `SELECT count(*) FILTER (WHERE "status" = 'received') AS received, count(*) AS stored FROM "message"`,
          )
          .then((r) => ({ received: Number(r.rows[0].received), stored: Number(r.rows[0].stored) }))
          .catch(() => ({ received: NaN, stored: NaN })),
        destinations(api, apiKey),
      ]);
      const messages = counts.received;
      const [dbNow, redisNow] = await Promise.all([
        dbCounters(db),
        redisCalls(redis).then((m) => [...m.values()].reduce((a, n) => a + n, 0)),
      ]);
      const snap = cpuSnapshot();
      const d = cpuDelta(prevSnap, snap, roles);
      prevSnap = snap;
      const processedNow = counts.stored - counts.received;
      intervals.push({
        seconds: (t - lastPrint) / 1000,
        commits: dbNow.commits - prevDb.commits,
        redisCommands: redisNow - prevRedis,
        ingested: load.acked - prev.acked,
        processed: processedNow - prev.processed,
        deliveries: delivered - prev.deliveries,
        cpu: d.byRole,
      });
      prev = { acked: load.acked, processed: processedNow, deliveries: delivered };
      prevDb = dbNow;
      prevRedis = redisNow;
      const perS = (k: string): number => (d.byRole[k] / d.seconds) * CPUS; // cores busy
      const wakes = await Promise.all(SINKS.map((id) => wakeJobs(redis, prefix, id)));
      const dv = (dests ?? [])
        .map(
          (d, k) =>
            `${d.id} ${d.counts.pending} (lag ${d.lagSeconds} s, ${wakes[k]?.waiting ?? '?'} wake jobs waiting)`,
        )
        .join(', ');
      log(
        `  ${((t - started) / 1000).toFixed(1).padStart(6)} s  sent ${String(load.sent).padStart(6)}  gw-acked ${String(load.acked).padStart(6)}  ehr ${String(sinkLogs[0].count).padStart(6)}  ehr2 ${String(sinkLogs[1].count).padStart(6)}  both ${String(b).padStart(6)} (${String(Math.round(((b - lastDelivered) * 1000) / (t - lastPrint))).padStart(4)}/s)  in flight ${String(load.sent - b).padStart(6)} | not yet processed ${messages}; pending deliveries ${dv || '?'} | cores: gw ${perS('gateway').toFixed(2)} wk ${perS('worker').toFixed(2)} pg ${perS('postgres').toFixed(2)} redis ${perS('redis').toFixed(2)} bench ${perS('bench').toFixed(2)} other ${perS('other').toFixed(2)}`,
      );
      lastPrint = t;
      lastDelivered = b;
    }
    if (lastSend !== undefined) {
      if (allDone) {
        drainEnd = t;
        break;
      }
      if (t - lastProgress > stallMs) {
        endReason = `nothing delivered for ${stallMs / 1000} s`;
        drainEnd = t;
        break;
      }
      if (t - lastSend > drainMs) {
        endReason = `drain took longer than ${drainMs / 1000} s`;
        drainEnd = t;
        break;
      }
    } else if (t - lastProgress > stallMs + seconds * 1000) {
      throw new Error('nothing delivered for too long while sending');
    }
  }
  loop.disable();
  const endedUs = Number(process.hrtime.bigint() / 1000n);
  const cpu1 = cpuSnapshot();
  const db1 = await dbCounters(db);
  const redis1 = await redisCalls(redis);
  const sendEnd = lastSend;
  const elapsed = (drainEnd - started) / 1000;
  const cpu = cpuDelta(cpu0, cpu1, roles);
  const pressureAfter = cpuPressure().replace(/^some /, '');

  // ---- figures from the clocks of this process ----
  let lastComplete = 0;
  for (let i = 0; i < total; i++) {
    const c = both(i);
    if (!Number.isNaN(c)) {
      lastComplete = Math.max(lastComplete, c);
    }
  }
  const drainS = lastComplete > sendEnd ? (lastComplete - sendEnd) / 1000 : 0;
  const windowStart = load.sentAt[warmupN] ?? started;
  const windowS = (sendEnd - windowStart) / 1000;
  let inWindow = 0;
  const e2e: number[] = [];
  const e2eBySink: number[][] = [[], []];
  const gwAck: number[] = [];
  const slip: number[] = [];
  let undelivered = 0;
  const t0Sched = load.sentAt[0];
  for (let i = 0; i < total; i++) {
    const c = both(i);
    if (!Number.isNaN(c) && c >= windowStart && c <= sendEnd) {
      inWindow++;
    }
    if (i < warmupN) {
      continue;
    }
    const s = load.sentAt[i];
    gwAck.push(load.gwAckAt[i] - s);
    slip.push(s - (t0Sched + (i * 1000) / rate));
    sinkLogs.forEach((sl, k) => {
      const a = sl.ackAt[i];
      if (Number.isNaN(a)) {
        undelivered++;
      } else {
        e2e.push(a - s);
        e2eBySink[k].push(a - s);
      }
    });
  }
  const sustained = windowS > 0 ? inWindow / windowS : 0;
  const e2eS = sortedOf(e2e);
  const gwS = sortedOf(gwAck);
  const slipS = sortedOf(slip);
  const measured = total - warmupN;

  // ---- per stage, from the database (same machine clock; epoch ms) ----
  const msgRows = (
    await db.query<{ cid: string; rcv: number; proc: number | null; status: string }>(
      `SELECT "control_id" AS cid, (extract(epoch FROM "received_at") * 1000)::float8 AS rcv,
              (extract(epoch FROM "processed_at") * 1000)::float8 AS proc, "status"
       FROM "message" WHERE "feed" = $1`,
      [FEED],
    )
  ).rows;
  const messageStatuses: Record<string, number> = {};
  const received = new Float64Array(total).fill(NaN);
  const processed = new Float64Array(total).fill(NaN);
  for (const r of msgRows) {
    messageStatuses[r.status] = (messageStatuses[r.status] ?? 0) + 1;
    const i = indexOf(r.cid);
    if (i >= 0 && i < total) {
      received[i] = Number(r.rcv);
      processed[i] = r.proc === null ? NaN : Number(r.proc);
    }
  }
  const delRows = (
    await db.query<{
      destination: string;
      cid: string;
      created: number;
      delivered: number | null;
      attempts: number;
      status: string;
    }>(
      `SELECT d."destination", m."control_id" AS cid, (extract(epoch FROM d."created_at") * 1000)::float8 AS created,
              (extract(epoch FROM d."delivered_at") * 1000)::float8 AS delivered, d."attempts", d."status"
       FROM "delivery" d JOIN "message" m ON m."id" = d."message_id"`,
    )
  ).rows;
  const deliveryStatuses: Record<string, Record<string, number>> = {};
  const retried: Record<string, number> = {};
  const stage = {
    toGateway: [] as number[],
    rcvToProcessed: [] as number[],
    processedToSink: [] as number[],
    sinkToMarked: [] as number[],
  };
  for (const r of delRows) {
    const st = (deliveryStatuses[r.destination] ??= {});
    st[r.status] = (st[r.status] ?? 0) + 1;
    if (Number(r.attempts) > 1) {
      retried[r.destination] = (retried[r.destination] ?? 0) + 1;
    }
    const i = indexOf(r.cid);
    const k = SINKS.indexOf(r.destination as (typeof SINKS)[number]);
    if (i < warmupN || i >= total || k < 0) {
      continue;
    }
    const sinkAck = sinkLogs[k].ackAt[i];
    if (!Number.isNaN(sinkAck) && r.delivered !== null) {
      stage.processedToSink.push(wall0 + sinkAck - processed[i]);
      stage.sinkToMarked.push(Number(r.delivered) - (wall0 + sinkAck));
    }
  }
  for (let i = warmupN; i < total; i++) {
    if (!Number.isNaN(received[i])) {
      stage.toGateway.push(received[i] - (wall0 + load.sentAt[i]));
      if (!Number.isNaN(processed[i])) {
        stage.rcvToProcessed.push(processed[i] - received[i]);
      }
    }
  }
  const wallDrift = Date.now() - now() - wall0;

  const wakesEnd = await Promise.all(SINKS.map((id) => wakeJobs(redis, prefix, id)));

  // ---- what the API shows ----
  const destsEnd = await destinations(api, apiKey);
  let metricsNote = 'unavailable';
  let metricsLines: string[] = [];
  try {
    const res = await apiGet(api, apiKey, '/metrics');
    const text = await res.text();
    metricsLines = text
      .split('\n')
      .filter(
        (l) =>
          /^hl7_delivery_(outcomes_total|send_seconds_(sum|count)|latency_seconds_(sum|count)|due_lanes)/.test(
            l,
          ) || /^hl7_pipeline_(messages_total|drain_seconds_(sum|count))/.test(l),
      );
    metricsNote = metricsLines.some((l) => l.startsWith('hl7_delivery_outcomes_total'))
      ? `${metricsLines.length} hl7_delivery_*/hl7_pipeline_* series`
      : `no hl7_delivery_outcomes_total series (GET /metrics is served by the api process; the delivery metrics live in the worker processes${opts.workerMetrics ? '' : ' — try --worker-metrics'})`;
  } catch (err) {
    metricsNote = `failed: ${(err as Error).message}`;
  }

  // ---- worker profiles (written when the workers stop) ----
  const profileLines: string[] = [];
  if (opts.cpuProf) {
    for (const r of roles.filter((x) => x.name.startsWith('worker'))) {
      await stopRole(r);
      const file = join(resolve(opts.cpuProf), `worker-${r.child.pid}.cpuprofile`);
      if (!existsSync(file)) {
        profileLines.push(`${r.name}: no profile written (${file})`);
        continue;
      }
      const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
      profileLines.push(
        ...summarizeProfile(profile, startedUs, endedUs).map((l) => `${r.name}: ${l}`),
        `${r.name}: profile ${file}`,
      );
    }
  }

  // ---- report ----
  const f = (x: number, d = 0): string => (Number.isNaN(x) ? 'n/a' : x.toFixed(d));
  const dist = (xs: number[]): string => {
    const s = sortedOf(xs);
    return `p50 ${f(pct(s, 0.5), 1)}  p90 ${f(pct(s, 0.9), 1)}  p99 ${f(pct(s, 0.99), 1)}  max ${f(s[s.length - 1] ?? NaN, 1)} ms  (n ${s.length})`;
  };
  const duplicates = sinkLogs.reduce((n, s) => n + s.duplicates, 0);
  const orderViolations = sinkLogs.reduce((n, s) => n + s.orderViolations, 0);
  const p50 = pct(e2eS, 0.5);
  const p99 = pct(e2eS, 0.99);
  const maxMs = e2eS[e2eS.length - 1] ?? NaN;
  const targetMet = sustained >= 500 && p99 <= 1000 && undelivered === 0;
  console.log('');
  console.log(
    `bench:e2e — ${rate} msgs/s offered for ${seconds} s over ${connections} connection(s), ${workersN} worker process(es), ${patientsN} patients, destinations ehr + ehr2 (concurrency ${concurrency}, ${destConnections} connection(s) each)`,
  );
  console.log(
    `  ${total} messages sent (${load.naks} not AA at the gateway); sending took ${((sendEnd - t0Sched) / 1000).toFixed(2)} s (${Math.round(((total - 1) * 1000) / (sendEnd - t0Sched))} msgs/s achieved); lateness of sends against the schedule ${dist(slip)}`,
  );
  console.log(
    `  warm-up: first ${warmupN} messages (${WARMUP_SHARE * 100}%); steady window ${windowS.toFixed(1)} s; run ended: ${endReason} (${elapsed.toFixed(1)} s after the first send)`,
  );
  console.log(
    `  sustained (delivered to both sinks in the steady window): ${Math.round(sustained)} msgs/s; drain after the last send: ${drainS.toFixed(2)} s`,
  );
  console.log(
    `  end-to-end latency (client write = "received at the gateway" → sink ACK), ${measured} messages × 2 sinks: ${dist(e2e)}`,
  );
  sinkLogs.forEach((sl, k) =>
    console.log(
      `    ${sl.id.padEnd(5)} delivered ${sl.count}/${total}, duplicates ${sl.duplicates}, order violations ${sl.orderViolations}, not AA ${sl.nonAa}, unknown MSH-10 ${sl.unknown}; latency ${dist(e2eBySink[k])}`,
    ),
  );
  console.log(`  undelivered (message, sink) pairs after the warm-up: ${undelivered}`);
  console.log(
    "  per stage (messages after the warm-up; PostgreSQL timestamps are the engine processes' clocks, same machine):",
  );
  console.log(`    client write → gateway received_at        ${dist(stage.toGateway)}`);
  console.log(`    client write → gateway ACK (durable)       ${dist(gwAck)}`);
  console.log(`    received_at → processed_at (batch start)   ${dist(stage.rcvToProcessed)}`);
  console.log(`    processed_at → sink ACK                    ${dist(stage.processedToSink)}`);
  console.log(`    sink ACK → delivered_at (markDelivered)    ${dist(stage.sinkToMarked)}`);
  console.log(
    `  message rows: ${JSON.stringify(messageStatuses)}; delivery rows: ${JSON.stringify(deliveryStatuses)}; retried deliveries ${JSON.stringify(retried)}`,
  );
  console.log(
    `  GET /api/destinations at the end: ${(destsEnd ?? [])
      .map((d) => `${d.id} ${JSON.stringify(d.counts)} lag ${d.lagSeconds} s`)
      .join('; ')}`,
  );
  console.log(
    `  delivery wake-up jobs created (BullMQ): ${SINKS.map((id, k) => `${id} ${wakesEnd[k].created} (${(wakesEnd[k].created / Math.max(1, sinkLogs[k].count)).toFixed(2)} per delivery)`).join(', ')}`,
  );
  console.log(`  GET /metrics: ${metricsNote}`);
  metricsLines.forEach((l) => console.log(`    ${l}`));
  console.log(
    `  CPU seconds over ${elapsed.toFixed(1)} s (send + drain): ${Object.entries(cpu.byRole)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}; machine busy ${cpu.machineBusyPct}%; /proc/pressure/cpu before ${pressureBefore}, after ${pressureAfter}`,
  );
  const engineCpu = Object.entries(cpu.byRole)
    .filter(([k]) => k !== 'bench' && k !== 'other')
    .reduce((t, [, v]) => t + v, 0);
  const deliveredAll = deliveredBoth();
  const cpuMsPerMsg = deliveredAll > 0 ? (engineCpu * 1000) / deliveredAll : NaN;
  console.log(
    `  engine CPU (roles + PostgreSQL + Redis) per message delivered to both sinks: ${cpuMsPerMsg.toFixed(2)} ms → at most ≈ ${Math.round(2000 / cpuMsPerMsg)} msgs/s on 2 otherwise idle cores (the bench's client and sinks excluded)`,
  );
  const attribution: Array<[string, (c: Record<string, number>) => number]> = [
    ['gateway', (c) => c.gateway],
    ['worker', (c) => c.worker],
    ['postgres', (c) => c.postgres],
    ['redis', (c) => c.redis],
    ['engine (all)', (c) => c.gateway + c.worker + (c.api ?? 0) + c.postgres + c.redis],
  ];
  // The same split for PostgreSQL commits and Redis commands (counts, not CPU: ×1000 undone).
  const asCpu = intervals.map((iv) => ({
    ...iv,
    cpu: { ...iv.cpu, commits: iv.commits / 1000, redisCommands: iv.redisCommands / 1000 },
  }));
  const commitSplit = attributeCpu(asCpu, (c) => c.commits);
  const redisSplit = attributeCpu(asCpu, (c) => c.redisCommands);
  const attributed: Record<string, unknown> = {};
  const split = attribution.map(([name, key]) => [name, attributeCpu(intervals, key)] as const);
  const only = split[0][1];
  if (only) {
    console.log(
      `  CPU ms per unit of work (deliveries alone in ${only.deliveryOnlyS.toFixed(0)} s after the pipeline drained; the rest charged to ingest + pipeline):`,
    );
    for (const [name, a] of split) {
      if (a) {
        console.log(
          `    ${name.padEnd(13)} per delivery (one message to one sink) ${a.perDelivery.toFixed(2).padStart(5)}   per message ingested + processed ${a.perMessage.toFixed(2).padStart(5)}`,
        );
        attributed[name] = { delivery: round(a.perDelivery), message: round(a.perMessage) };
      }
    }
    if (commitSplit && redisSplit) {
      console.log(
        `    PostgreSQL commits per delivery ${commitSplit.perDelivery.toFixed(2)}, per message ingested + processed ${commitSplit.perMessage.toFixed(2)}; Redis commands (server-wide) per delivery ${redisSplit.perDelivery.toFixed(1)}, per message ingested + processed ${redisSplit.perMessage.toFixed(1)}`,
      );
      attributed.pg_commits = {
        delivery: round(commitSplit.perDelivery),
        message: round(commitSplit.perMessage),
      };
      attributed.redis_commands = {
        delivery: round(redisSplit.perDelivery, 1),
        message: round(redisSplit.perMessage, 1),
      };
    }
  } else {
    console.log(
      '  CPU split per stage: n/a (no interval with deliveries alone, i.e. the pipeline never fell behind)',
    );
  }
  // Stage rates over the progress intervals (each stage runs alone or with a backlog at times).
  const peak = (f: (iv: Interval) => number): number =>
    Math.max(0, ...intervals.filter((iv) => iv.seconds > 2).map((iv) => f(iv) / iv.seconds));
  const stageRates = {
    ingest: Math.round(peak((iv) => iv.ingested)),
    pipeline: Math.round(peak((iv) => iv.processed)),
    delivery_both_sinks: Math.round(peak((iv) => iv.deliveries) / 2),
    delivery_alone_both_sinks: Math.round(
      peak((iv) => (iv.ingested === 0 && iv.processed === 0 ? iv.deliveries : 0)) / 2,
    ),
  };
  console.log(
    `  peak 5-s rates (msgs/s): gateway ACKs ${stageRates.ingest}, pipeline ${stageRates.pipeline}, delivered to both sinks ${stageRates.delivery_both_sinks} (${stageRates.delivery_alone_both_sinks} with the pipeline idle)`,
  );
  const per = (x: number): string => (x / total).toFixed(1);
  const redisDelta = [...redis1]
    .map(([cmd, n]) => [cmd, n - (redis0.get(cmd) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const redisTotal = redisDelta.reduce((t, [, n]) => t + n, 0);
  console.log(
    `  per message (send + drain): PostgreSQL commits ${per(db1.commits - db0.commits)} (this database); WAL records ${per(db1.walRecords - db0.walRecords)}, WAL bytes ${per(db1.walBytes - db0.walBytes)}, WAL fsyncs ${per(db1.walSyncs - db0.walSyncs)} (server-wide); Redis commands ${per(redisTotal)} (server-wide: ${redisDelta
      .slice(0, 6)
      .map(([cmd, n]) => `${cmd} ${per(n)}`)
      .join(', ')})`,
  );
  profileLines.forEach((l) => console.log(`  ${l}`));
  console.log(
    `  bench event-loop delay (its client and sinks share it): p50 ${(loop.percentile(50) / 1e6 - LOOP_RES_MS).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6 - LOOP_RES_MS).toFixed(1)} ms, max ${(loop.max / 1e6 - LOOP_RES_MS).toFixed(1)} ms; wall/monotonic clock drift over the run ${wallDrift.toFixed(1)} ms`,
  );
  console.log(
    `  target (≥ 500 msgs/s sustained, p99 ≤ 1 s, everything delivered): ${targetMet ? 'met' : 'NOT met'}`,
  );
  const out = {
    offered_msgs_per_sec: rate,
    sustained_msgs_per_sec: Math.round(sustained),
    p50_ms: round(p50, 1),
    p99_ms: round(p99, 1),
    max_ms: round(maxMs, 1),
    messages: total,
    duplicates,
    order_violations: orderViolations,
    undelivered,
    drain_s: round(drainS),
    seconds,
    connections,
    workers: workersN,
    patients: patientsN,
    concurrency,
    dest_connections: destConnections,
    delivered: Object.fromEntries(sinkLogs.map((s) => [s.id, s.count])),
    gateway_ack_p99_ms: round(pct(gwS, 0.99), 1),
    send_lateness_p99_ms: round(pct(slipS, 0.99), 1),
    pipeline_p99_ms: round(pct(sortedOf(stage.rcvToProcessed), 0.99), 1),
    delivery_p99_ms: round(pct(sortedOf(stage.processedToSink), 0.99), 1),
    delivery_rows: deliveryStatuses,
    cpu_s: cpu.byRole,
    engine_cpu_ms_per_msg: round(cpuMsPerMsg),
    pg_commits_per_msg: round((db1.commits - db0.commits) / total, 1),
    redis_commands_per_msg: round(redisTotal / total, 1),
    peak_rates: stageRates,
    wake_jobs_per_delivery: round(
      (wakesEnd[0].created + wakesEnd[1].created) /
        Math.max(1, sinkLogs[0].count + sinkLogs[1].count),
    ),
    cpu_ms_per_unit: attributed,
    machine_busy_pct: cpu.machineBusyPct,
    cpu_pressure_before: pressureBefore,
    target_met: targetMet,
  };
  console.log(JSON.stringify(out));
  // The target is a figure to report; lost, duplicated or reordered deliveries are failures.
  if (undelivered > 0 || duplicates > 0 || orderViolations > 0) {
    process.exitCode = 1;
  }
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      return;
    }
    interrupted = true;
    log(`${sig}: stopping the roles, dropping the database`);
    void cleanup().finally(() => process.exit(130));
  });
}

main()
  .catch((err: unknown) => {
    if (!interrupted) {
      console.error(err);
      process.exitCode = 2;
    }
  })
  .finally(() => {
    if (!interrupted) {
      void cleanup().finally(() => process.exit());
    }
  });
