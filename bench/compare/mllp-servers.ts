/**
 * Side-by-side MLLP server measurements on this machine (docs/decisions/0002-mllp-codec.md).
 *
 *   npx ts-node --transpile-only -r tsconfig-paths/register bench/compare/mllp-servers.ts \
 *     [--messages 2000] [--timeout 500]
 *
 * One client (our MllpDecoder, raw socket, Nagle off) drives each server in three modes:
 * - sequential: one kept-open connection; send a message, wait for its ACK, repeat.
 * - burst: one kept-open connection; two frames in one TCP write, wait for two ACKs, repeat.
 * - reconnect: a new connection per message (send, ACK, close).
 * For each mode it counts ACKs matched to their message (MSA-2 = MSH-10), missing ACKs
 * (timeout), mismatched ACKs, extra ACKs (more ACKs than messages), how many times the server
 * handed a message to its handler (duplicates show as more calls than messages), msgs/s of
 * correctly ACKed messages and ACK latency.
 *
 * Servers:
 * - node-hl7-server 2.5.0 (ACKs AA from its handler).
 * - ours/bare: MllpDecoder + a canned ACK built by string concatenation (codec cost only).
 * - ours/parse: MllpDecoder + parseMessage + buildAck from @engine/hl7 (what the gateway does
 *   before its DB commit).
 * - medplum/core: MllpDecoder + Hl7Message.parse().buildAck() from @medplum/core (its parser and
 *   ACK builder; Medplum's Hl7Server lives in @medplum/hl7, which is not installed: not measured).
 *
 * Prints a table, then a final line of JSON.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Command } from 'commander';
import { Hl7Message as MedplumHl7Message } from '@medplum/core';
import { Server as Hl7Server } from 'node-hl7-server';
import { buildAck, encodeMllp, MllpDecoder, parseMessage } from '@engine/hl7';

type Mode = 'sequential' | 'burst' | 'reconnect';

interface Result {
  server: string;
  mode: Mode;
  sent: number;
  acked: number;
  missing: number;
  mismatched: number;
  extra: number;
  msgsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Times the server handed a message to the application (more than `sent`: duplicates). */
  handlerCalls: number;
  note?: string;
}

interface Running {
  name: string;
  port: number;
  handlerCalls(): number;
  close(): Promise<void>;
}

const message = (id: string): string =>
  [
    `MSH|^~\\&|LAB|HOSP|ENGINE|HOSP|20240101120000||ADT^A01^ADT_A01|${id}|P|2.5.1`,
    'EVN|A01|20240101120000',
    'PID|1||123456^^^HOSP^MR||DOE^JANE^Q||19800101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701',
    'PV1|1|I|W^101^1',
  ].join('\r') + '\r';

const msa2Of = (ack: string): string =>
  ack
    .split(/\r\n?|\n/)
    .find((s) => s.startsWith('MSA'))
    ?.split('|')[2] ?? '';

// ---------------------------------------------------------------------------------------------
// servers

async function startNodeHl7Server(): Promise<Running> {
  const server = new Hl7Server({ bindAddress: '127.0.0.1' });
  let calls = 0;
  const inbound = server.createInbound({ port: 0 }, (_req, res) => {
    calls++;
    void res.sendResponse('AA');
  });
  await once(inbound, 'listen');
  // The listening net.Server is internal; port 0 is accepted, so read the bound port from it.
  const internal = (inbound as unknown as { _socket: net.Server })._socket;
  const port = (internal.address() as net.AddressInfo).port;
  return {
    name: 'node-hl7-server@2.5.0',
    port,
    handlerCalls: () => calls,
    close: async () => {
      await inbound.close();
    },
  };
}

async function startCodecServer(name: string, ack: (payload: Buffer) => Buffer): Promise<Running> {
  const sockets = new Set<net.Socket>();
  let calls = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new MllpDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === 'frame') {
          calls++;
          socket.write(encodeMllp(ack(event.payload)));
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    handlerCalls: () => calls,
    close: async () => {
      for (const s of sockets) {
        s.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Canned ACK: copy MSH-10 by splitting the first segment; no parser. */
function bareAck(payload: Buffer): Buffer {
  const end = payload.indexOf(0x0d);
  const msh = payload.toString('latin1', 0, end === -1 ? payload.length : end).split('|');
  return Buffer.from(
    `MSH|^~\\&|${msh[4] ?? ''}|${msh[5] ?? ''}|${msh[2] ?? ''}|${msh[3] ?? ''}|20240101120000||ACK^${(msh[8] ?? '').split('^')[1] ?? ''}^ACK|A${msh[9] ?? ''}|P|${msh[11] ?? ''}\rMSA|AA|${msh[9] ?? ''}\r`,
    'latin1',
  );
}

function engineAck(payload: Buffer): Buffer {
  return buildAck(parseMessage(payload), { code: 'AA' }).toBuffer();
}

function medplumAck(payload: Buffer): Buffer {
  return Buffer.from(MedplumHl7Message.parse(payload.toString('utf8')).buildAck().toString());
}

// ---------------------------------------------------------------------------------------------
// client

class Client {
  private readonly decoder = new MllpDecoder();
  readonly acks: string[] = [];
  private waiter: { n: number; resolve: () => void } | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) {
        if (event.type === 'frame') {
          this.acks.push(event.payload.toString('latin1'));
        }
      }
      if (this.waiter && this.acks.length >= this.waiter.n) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.resolve();
    });
  }

  static async connect(port: number): Promise<Client> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new Client(socket);
  }

  /** Wait until `n` ACKs in total have arrived, the connection closes, or the timeout. */
  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.acks.length >= n || this.closed) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, timeoutMs);
      this.waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) {
    return 0;
  }
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Stop a mode after this many missing ACKs in a row: the server is not answering. */
const GIVE_UP_AFTER = 5;
/** Stop a mode after this many missing or mismatched ACKs: the verdict is in (and the
 * node-hl7-server kept-open runs are quadratic: every message re-ACKs all earlier ones). */
const GIVE_UP_WRONG = 200;

async function measure(
  target: Running,
  mode: Mode,
  count: number,
  timeoutMs: number,
): Promise<Result> {
  const latencies: number[] = [];
  let sent = 0;
  let acked = 0;
  let missing = 0;
  let mismatched = 0;
  let extra = 0;
  let consecutiveMissing = 0;
  let note: string | undefined;
  const perRound = mode === 'burst' ? 2 : 1;
  const rounds = Math.ceil(count / perRound);

  let client: Client | null = null;
  const started = performance.now();
  let r = 0;
  for (
    ;
    r < rounds && consecutiveMissing < GIVE_UP_AFTER && missing + mismatched < GIVE_UP_WRONG;
    r++
  ) {
    if (client === null || client.closed || mode === 'reconnect') {
      if (client && mode !== 'reconnect' && !note) {
        note = 'server closed the kept-open connection; reconnected';
      }
      client?.socket.destroy();
      client = await Client.connect(target.port);
    }
    const ids = Array.from({ length: perRound }, (_, k) => `${mode[0]}${r * perRound + k}`);
    const base = client.acks.length;
    const t0 = performance.now();
    client.socket.write(Buffer.concat(ids.map((id) => encodeMllp(message(id)))));
    sent += perRound;
    await client.waitFor(base + perRound, timeoutMs);
    const elapsed = performance.now() - t0;
    const got = client.acks.slice(base, base + perRound).map(msa2Of);
    for (const [k, id] of ids.entries()) {
      if (got[k] === undefined) {
        missing++;
        consecutiveMissing++;
      } else if (got[k] === id) {
        acked++;
        consecutiveMissing = 0;
        latencies.push(elapsed);
      } else {
        mismatched++;
        consecutiveMissing = 0;
      }
    }
    if (mode === 'reconnect') {
      client.socket.end();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  // Late or extra ACKs: let the connection settle, then count ACKs beyond the messages sent.
  if (client) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (mode !== 'reconnect') {
      // One connection unless the server closed it (then this undercounts).
      extra = Math.max(0, client.acks.length - sent);
    }
    client.socket.destroy();
  }
  if (r < rounds) {
    note = `${note ? `${note}; ` : ''}stopped early after ${sent} messages (too many missing/wrong ACKs)`;
  }
  latencies.sort((a, b) => a - b);
  return {
    server: target.name,
    mode,
    sent,
    acked,
    missing,
    mismatched,
    extra,
    msgsPerSec: round(acked / seconds, 0),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
    handlerCalls: target.handlerCalls(),
    note,
  };
}

async function main(): Promise<void> {
  const program = new Command('mllp-servers')
    .option('--messages <n>', 'messages per server and mode', (v) => Number.parseInt(v, 10), 2000)
    .option('--timeout <ms>', 'ACK wait before counting it missing', (v) => Number(v), 500)
    .parse(process.argv);
  const opts = program.opts<{ messages: number; timeout: number }>();

  const starters: [string, () => Promise<Running>][] = [
    ['node-hl7-server', startNodeHl7Server],
    ['ours/bare', () => startCodecServer('ours/bare (MllpDecoder + canned ACK)', bareAck)],
    ['ours/parse', () => startCodecServer('ours/parse (MllpDecoder + @engine/hl7)', engineAck)],
    [
      'medplum/core',
      () =>
        startCodecServer('medplum/core (MllpDecoder + @medplum/core parse/buildAck)', medplumAck),
    ],
  ];
  const results: Result[] = [];
  for (const [, start] of starters) {
    // Warm-up on a separate instance so JIT does not favour whoever runs later.
    const warm = await start();
    await measure(warm, 'sequential', 200, opts.timeout);
    await warm.close();
    for (const mode of ['sequential', 'burst', 'reconnect'] as const) {
      const target = await start();
      results.push(await measure(target, mode, opts.messages, opts.timeout));
      await target.close();
    }
  }

  console.log(
    `node ${process.version}, ${opts.messages} messages per run, ACK timeout ${opts.timeout} ms`,
  );
  console.table(
    results.map((r) => ({
      server: r.server,
      mode: r.mode,
      sent: r.sent,
      acked: r.acked,
      missing: r.missing,
      mismatched: r.mismatched,
      extra: r.extra,
      'msgs/s': r.msgsPerSec,
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
      'handler calls': r.handlerCalls,
      note: r.note ?? '',
    })),
  );
  console.log(JSON.stringify({ node: process.version, messages: opts.messages, results }));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
