/**
 * A standalone HTTP receiver, to try the engine's HTTP destinations and for end-to-end tests.
 *
 *   npm run sink:http -- [--host 127.0.0.1] [--port 6680] [--status 200]
 *                        [--reject-pattern REGEX] [--fail-rate 0..1] [--seed N]
 *                        [--delay-ms N] [--record FILE] [--quiet] [--verbose]
 *
 * Accepts any method on any path. Prints `sink-http listening on <host>:<port>` once listening
 * (`--port 0`: any free port, the line has the real one), then one line per request: time,
 * sequence number, method, path, status, and for JSON bodies their `type` (or `resourceType`)
 * and `id` (`--verbose`: also the body; `--quiet`: nothing).
 *
 * Answers: `--reject-pattern` first (400 with a JSON error), then `--fail-rate` (503), else
 * `--status` (200). `--record FILE` appends one JSON line per request ({at, seq, method, path,
 * headers: {content-type, idempotency-key, x-delivery-id}, status, body}) synchronously before
 * the answer is written. SIGINT / SIGTERM close the listener and connections and exit 0.
 */
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import {
  appendRecord,
  type CommonSinkOptions,
  exitOnSignals,
  failureDice,
  formatAddress,
  oneLine,
  parseNonNegativeInt,
  parsePort,
  parseRate,
  parseRegex,
  processIo,
  type SinkIo,
  sleep,
} from './sink-common';

export interface HttpSinkOptions extends CommonSinkOptions {
  /** Status for requests neither rejected nor failed. */
  status: number;
}

export const HTTP_SINK_DEFAULTS: HttpSinkOptions = {
  host: '127.0.0.1',
  port: 6680,
  status: 200,
  failRate: 0,
  delayMs: 0,
  quiet: false,
  verbose: false,
};

/** One line of the `--record` file. */
export interface HttpSinkRecord {
  at: string;
  seq: number;
  method: string;
  path: string;
  headers: {
    'content-type': string | null;
    'idempotency-key': string | null;
    'x-delivery-id': string | null;
  };
  status: number;
  body: string;
}

export interface HttpSink {
  host: string;
  port: number;
  /** Requests received so far. */
  readonly received: number;
  close(): Promise<void>;
}

/** Larger bodies get 413 (and are not recorded). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function header(req: http.IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) {
    return null;
  }
  return Array.isArray(value) ? value.join(', ') : value;
}

/** ` type=... id=...` from a JSON body, or '' when it is not JSON or has neither. */
function jsonSummary(body: string): string {
  if (!/^\s*\{/.test(body)) {
    return '';
  }
  try {
    const doc = JSON.parse(body) as Record<string, unknown>;
    const type = doc.type ?? doc.resourceType;
    const parts: string[] = [];
    if (typeof type === 'string') {
      parts.push(`type=${oneLine(type, 40)}`);
    }
    if (typeof doc.id === 'string' || typeof doc.id === 'number') {
      parts.push(`id=${oneLine(String(doc.id), 60)}`);
    }
    return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
  } catch {
    return '';
  }
}

function answer(res: http.ServerResponse, status: number, body?: object): void {
  if (body === undefined || status === 204 || status === 304 || status < 200) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}

/** Start listening; resolves once the port is bound. */
export async function startHttpSink(
  options: HttpSinkOptions,
  io: SinkIo = processIo,
): Promise<HttpSink> {
  const fails = failureDice(options.failRate, options.seed);
  let seq = 0;

  const decide = (body: string): { status: number; body?: object } => {
    const failed = fails(); // one draw per request, whatever the outcome: reproducible runs
    if (options.rejectPattern?.test(body) === true) {
      return {
        status: 400,
        body: { error: 'rejected', reason: 'body matches --reject-pattern' },
      };
    }
    if (failed) {
      return {
        status: 503,
        body: { error: 'unavailable', reason: 'simulated failure (--fail-rate)' },
      };
    }
    const status = options.status;
    if (status >= 200 && status < 300) {
      return { status, body: { status: 'accepted' } };
    }
    return { status, body: { error: `sink answers ${status} (--status)` } };
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const n = ++seq;
    const at = new Date();
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else {
        chunks.push(chunk);
      }
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const decision = tooLarge
          ? { status: 413, body: { error: `body exceeds ${MAX_BODY_BYTES} bytes` } }
          : decide(body);
        if (tooLarge) {
          fails(); // keep the dice in step with the request count
        }
        await sleep(options.delayMs);
        const method = req.method ?? '';
        const path = req.url ?? '';
        appendRecord(options.record, {
          at: at.toISOString(),
          seq: n,
          method,
          path,
          headers: {
            'content-type': header(req, 'content-type'),
            'idempotency-key': header(req, 'idempotency-key'),
            'x-delivery-id': header(req, 'x-delivery-id'),
          },
          status: decision.status,
          body: tooLarge ? '' : body,
        } satisfies HttpSinkRecord);
        if (!options.quiet) {
          io.out(
            `${at.toISOString()} #${n} ${oneLine(method, 10)} ${oneLine(path, 120)} ` +
              `${decision.status}${jsonSummary(body)}\n`,
          );
          if (options.verbose && body !== '') {
            io.out(`    ${body.replace(/\r\n|\r|\n/g, '\n    ')}\n`);
          }
        }
        answer(res, decision.status, decision.body);
      })();
    });
  };

  const server = http.createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host: options.host,
    port,
    get received() {
      return seq;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseStatus(value: string): number {
  const n = Number(value);
  if (!/^\d{3}$/.test(value) || n < 200 || n > 599) {
    throw new InvalidArgumentError('expected an HTTP status from 200 to 599');
  }
  return n;
}

interface CliOptions {
  host: string;
  port: number;
  status: number;
  rejectPattern?: RegExp;
  failRate: number;
  seed?: string;
  delayMs: number;
  record?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export function buildProgram(io: SinkIo): Command {
  const d = HTTP_SINK_DEFAULTS;
  return new Command('sink-http')
    .description('HTTP receiver that answers every request (to try the engine and for tests)')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .option('--host <host>', 'address to listen on', d.host)
    .option('--port <port>', 'port to listen on (0 = any free port)', parsePort, d.port)
    .option('--status <n>', 'status for every request', parseStatus, d.status)
    .option('--reject-pattern <regex>', 'answer 400 to bodies matching', parseRegex)
    .option('--fail-rate <rate>', 'share of requests answered 503 (0..1)', parseRate, d.failRate)
    .option('--seed <n>', 'seed of --fail-rate (same seed, same failures)')
    .option('--delay-ms <ms>', 'wait before each answer', parseNonNegativeInt, d.delayMs)
    .option('--record <file>', 'append one JSON line per request (before the answer)')
    .option('--quiet', 'no per-request output')
    .option('--verbose', 'also print each body');
}

/**
 * Parse arguments and start; resolves with the sink (or null after --help). With `signals`,
 * SIGINT / SIGTERM close the sink and exit 0 (set up before the listening line is printed).
 */
export async function main(
  argv: string[],
  io: SinkIo = processIo,
  signals = false,
): Promise<HttpSink | null> {
  const program = buildProgram(io);
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) {
      return null;
    }
    throw err;
  }
  const o = program.opts<CliOptions>();
  const sink = await startHttpSink(
    {
      host: o.host,
      port: o.port,
      status: o.status,
      rejectPattern: o.rejectPattern,
      failRate: o.failRate,
      seed: o.seed,
      delayMs: o.delayMs,
      record: o.record,
      quiet: o.quiet === true,
      verbose: o.verbose === true,
    },
    io,
  );
  if (signals) {
    exitOnSignals(() => sink.close(), io);
  }
  io.out(`sink-http listening on ${formatAddress(sink.host, sink.port)}\n`);
  return sink;
}

if (require.main === module) {
  main(process.argv.slice(2), processIo, true).then(
    () => undefined,
    (err: unknown) => {
      if (!(err instanceof CommanderError)) {
        console.error(`sink-http: ${err instanceof Error ? err.message : String(err)}`);
      }
      process.exit(2);
    },
  );
}
