/**
 * bench:ingest — durable-ACK ingest over MLLP, the full gateway side by side with a minimal
 * group-commit server, on local PostgreSQL and Redis.
 *
 *   npm run bench:ingest -- --connections 8 [--duration 10] [--rate 0] [--target both|gateway|minimal]
 *
 * Each connection sends a message, waits for its ACK, repeats (closed loop); with --rate R the
 * connections together offer R msgs/s (open loop, paced per connection) and latency is the
 * time from send to ACK. Prints a table, then one JSON line:
 *   {"msgs_per_sec":…,"p50_ms":…,"p99_ms":…, …}
 * Needs DATABASE_URL's server to allow CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/test).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Client } from 'pg';
import { encodeMllp, MllpDecoder } from '@engine/hl7';
import { clearPrefix, freePort, waitForPort } from './common';

const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

interface RunResult {
  target: string;
  connections: number;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  naks: number;
}

async function withAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function createDb(name: string): Promise<string> {
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropDb(name: string): Promise<void> {
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

let seq = 0;
function message(conn: number): Buffer {
  const n = ++seq;
  const mrn = `MRN${(n * 7919) % 50000}`;
  return Buffer.from(
    [
      `MSH|^~\\&|BENCH|HOSP|ENGINE|DEST|20240101120000||ADT^A08^ADT_A01|B${conn}-${n}|P|2.5.1`,
      `EVN|A08|20240101120000`,
      `PID|1||${mrn}^^^HOSP^MR~${n}^^^SSA^SS||SMITH^JOHN^Q^^^^L||19700101|M|||123 MAIN ST^^SPRINGFIELD^IL^62701^USA^H||(217)555-0100^PRN^PH|||M|||123-45-6789`,
      `PV1|1|I|W^101^1^HOSP||||1234^WELBY^MARCUS^^^DR|||MED||||ADM|||1234^WELBY^MARCUS^^^DR|IN||||||||||||||||||||||||||20240101120000`,
      `OBX|1|NM|8302-2^HEIGHT^LN||180|cm|||||F`,
    ].join('\r') + '\r',
    'latin1',
  );
}

/** Drive `connections` MLLP connections against a port for `seconds`. */
async function load(
  target: string,
  port: number,
  connections: number,
  seconds: number,
  rate: number,
  latencies: number[] = [],
): Promise<RunResult> {
  const first = latencies.length;
  let naks = 0;
  const deadline = performance.now() + seconds * 1000;
  const interval = rate > 0 ? (1000 * connections) / rate : 0;
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: connections },
      (_, ci) =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.setNoDelay(true);
          const decoder = new MllpDecoder();
          let sentAt = 0;
          let next = performance.now() + (interval * ci) / connections;
          const send = (): void => {
            if (performance.now() >= deadline) {
              socket.end();
              resolve();
              return;
            }
            const wait = interval > 0 ? next - performance.now() : 0;
            const go = (): void => {
              sentAt = performance.now();
              next = Math.max(next + interval, sentAt);
              socket.write(encodeMllp(message(ci)));
            };
            if (wait > 0) {
              setTimeout(go, wait);
            } else {
              go();
            }
          };
          socket.on('connect', send);
          socket.on('data', (chunk: Buffer) => {
            for (const ev of decoder.push(chunk)) {
              if (ev.type === 'frame') {
                latencies.push(performance.now() - sentAt);
                if (!ev.payload.includes('MSA|AA')) {
                  naks++;
                }
                send();
              }
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
  const secs = (performance.now() - started) / 1000;
  const mine = latencies.slice(first).sort((a, b) => a - b);
  const pct = (p: number): number =>
    mine.length === 0 ? 0 : mine[Math.min(mine.length - 1, Math.floor(p * mine.length))];
  return {
    target,
    connections,
    messages: mine.length,
    seconds: secs,
    msgsPerSec: mine.length / secs,
    p50: pct(0.5),
    p99: pct(0.99),
    max: mine[mine.length - 1] ?? 0,
    naks,
  };
}

interface Server {
  target: string;
  port: number;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

/** The full engine gateway role, as `npm run start:gateway` runs it, on a fresh database. */
async function startGateway(partitions: number, resendCheck: boolean): Promise<Server> {
  const dbName = `bench_ingest_gateway`;
  const url = await createDb(dbName);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  const cfg = join(dir, 'engine.yaml');
  writeFileSync(
    cfg,
    `engine:\n  partitions: ${partitions}\nfeeds:\n  - id: bench\n    host: 127.0.0.1\n    port: ${port}\n    accept: ['ADT^*', 'ORU^R01']\n    maxConnections: 1000\n    duplicates: { policy: ${resendCheck ? 'ack' : 'process'} }\n`,
  );
  const prefix = 'benchgw';
  await clearPrefix(REDIS_URL, prefix);
  const child = spawn(
    process.execPath,
    [join(__dirname, '../apps/engine/src/main.js'), 'gateway'],
    {
      env: {
        ...process.env,
        HL7_CONFIG: cfg,
        DATABASE_URL: url,
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await waitForPort(port, child);
  return {
    target: 'gateway',
    port,
    async stop() {
      await stopChild(child);
      await clearPrefix(REDIS_URL, prefix);
      await dropDb(dbName);
    },
  };
}

/** The minimal group-commit server (bench/minimal-server.ts) on a fresh database. */
async function startMinimal(): Promise<Server> {
  const dbName = `bench_ingest_minimal`;
  const url = await createDb(dbName);
  const port = await freePort();
  const prefix = 'benchmin';
  await clearPrefix(REDIS_URL, prefix);
  const child = spawn(
    process.execPath,
    [join(__dirname, 'minimal-server.js'), String(port), url, REDIS_URL, prefix],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(port, child);
  return {
    target: 'minimal',
    port,
    async stop() {
      await stopChild(child);
      await clearPrefix(REDIS_URL, prefix);
      await dropDb(dbName);
    },
  };
}

/** Merge the rounds of one target into one result. */
function merge(target: string, parts: RunResult[], latencies: number[]): RunResult {
  latencies.sort((x, y) => x - y);
  const pct = (p: number): number =>
    latencies.length === 0
      ? 0
      : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const messages = parts.reduce((n, r) => n + r.messages, 0);
  const seconds = parts.reduce((n, r) => n + r.seconds, 0);
  return {
    target,
    connections: parts[0].connections,
    messages,
    seconds,
    msgsPerSec: messages / seconds,
    p50: pct(0.5),
    p99: pct(0.99),
    max: latencies[latencies.length - 1] ?? 0,
    naks: parts.reduce((n, r) => n + r.naks, 0),
  };
}

function fmt(r: RunResult): string {
  return [
    r.target.padEnd(8),
    String(r.connections).padStart(5),
    String(r.messages).padStart(8),
    r.msgsPerSec.toFixed(0).padStart(9),
    r.p50.toFixed(2).padStart(8),
    r.p99.toFixed(2).padStart(8),
    r.max.toFixed(1).padStart(8),
    String(r.naks).padStart(6),
  ].join(' ');
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--connections <n>', 'concurrent MLLP connections', '8')
    .option('--duration <s>', 'seconds of measured load per target', '10')
    .option('--warmup <s>', 'seconds of warm-up load per target', '2')
    .option('--rate <n>', 'offered msgs/s over all connections (0 = as fast as ACKs allow)', '0')
    .option('--target <t>', 'gateway | minimal | both', 'both')
    .option('--rounds <n>', 'interleaved rounds the duration is split into', '4')
    .option('--partitions <n>', 'inbound partitions of the gateway', '16')
    .option('--no-resend-check', 'gateway feed with duplicates.policy=process (no resend lookup)')
    .parse()
    .opts<{
      rounds: string;
      partitions: string;
      resendCheck: boolean;
      connections: string;
      duration: string;
      warmup: string;
      rate: string;
      target: string;
    }>();
  const connections = Number(opts.connections);
  const seconds = Number(opts.duration);
  const warmup = Number(opts.warmup);
  const rate = Number(opts.rate);
  const results: RunResult[] = [];
  const rounds = Math.max(1, Number(opts.rounds));
  console.log(
    `bench:ingest: ${connections} connection(s), ${seconds}s per target in ${rounds} interleaved round(s), ${rate > 0 ? `${rate} msgs/s offered` : 'closed loop'}; PostgreSQL ${new URL(ADMIN_URL).host}, Redis ${new URL(REDIS_URL).host}`,
  );
  const servers: Server[] = [];
  try {
    if (opts.target === 'both' || opts.target === 'gateway') {
      servers.push(await startGateway(Number(opts.partitions), opts.resendCheck));
    }
    if (opts.target === 'both' || opts.target === 'minimal') {
      servers.push(await startMinimal());
    }
    for (const srv of servers) {
      if (warmup > 0) {
        await load('warmup', srv.port, connections, warmup, rate);
      }
    }
    // Interleaved rounds, so that both servers see the same machine (other tenants, checkpoints).
    const parts = new Map<string, { runs: RunResult[]; latencies: number[] }>();
    for (let r = 0; r < rounds; r++) {
      for (const srv of servers) {
        const acc = parts.get(srv.target) ?? { runs: [], latencies: [] };
        parts.set(srv.target, acc);
        acc.runs.push(
          await load(srv.target, srv.port, connections, seconds / rounds, rate, acc.latencies),
        );
      }
    }
    console.log('target   conns messages  msgs/s   p50 ms   p99 ms   max ms   naks');
    for (const [target, acc] of parts) {
      const r = merge(target, acc.runs, acc.latencies);
      console.log(fmt(r));
      results.push(r);
    }
  } finally {
    for (const srv of servers) {
      await srv.stop();
    }
  }
  const gw = results.find((r) => r.target === 'gateway');
  const min = results.find((r) => r.target === 'minimal');
  const main = gw ?? min!;
  const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
  const out: Record<string, unknown> = {
    msgs_per_sec: round(main.msgsPerSec, 0),
    p50_ms: round(main.p50),
    p99_ms: round(main.p99),
    connections,
    offered_rate: rate,
    naks: main.naks,
  };
  if (gw && min) {
    out.minimal_msgs_per_sec = round(min.msgsPerSec, 0);
    out.minimal_p50_ms = round(min.p50);
    out.minimal_p99_ms = round(min.p99);
    out.gateway_vs_minimal = round(gw.msgsPerSec / min.msgsPerSec, 3);
  }
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
