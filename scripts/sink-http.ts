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
import { InvalidArgumentError } from 'commander';
import {
  appendRecord,
  type CommonCliOptions,
  type CommonSinkOptions,
  listenSink,
  oneLine,
  processIo,
  sinkCli,
  type Sink,
  type SinkIo,
  sinkPolicy,
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

/** A listening HTTP sink (`received`: requests so far). */
export type HttpSink = Sink;

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
  const judge = sinkPolicy(options);
  let seq = 0;

  /** The answer to a request body (undefined: too large). */
  const decide = (body: string | undefined): { status: number; body?: object } => {
    const verdict = judge(body);
    switch (verdict) {
      case 'unreadable':
        return { status: 413, body: { error: `body exceeds ${MAX_BODY_BYTES} bytes` } };
      case 'rejected':
        return {
          status: 400,
          body: { error: 'rejected', reason: 'body matches --reject-pattern' },
        };
      case 'failed':
        return {
          status: 503,
          body: { error: 'unavailable', reason: 'simulated failure (--fail-rate)' },
        };
      case 'configured': {
        const status = options.status;
        if (status >= 200 && status < 300) {
          return { status, body: { status: 'accepted' } };
        }
        return { status, body: { error: `sink answers ${status} (--status)` } };
      }
    }
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
        const decision = decide(tooLarge ? undefined : body);
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
  return listenSink(
    server,
    options,
    () => seq,
    () => server.closeAllConnections(),
  );
}

function parseStatus(value: string): number {
  const n = Number(value);
  if (!/^\d{3}$/.test(value) || n < 200 || n > 599) {
    throw new InvalidArgumentError('expected an HTTP status from 200 to 599');
  }
  return n;
}

type CliOptions = CommonCliOptions & { status: number };

const cli = sinkCli({
  name: 'sink-http',
  description: 'HTTP receiver that answers every request (to try the engine and for tests)',
  defaults: HTTP_SINK_DEFAULTS,
  addOptions: (program) =>
    program.option(
      '--status <n>',
      'status for every request',
      parseStatus,
      HTTP_SINK_DEFAULTS.status,
    ),
  help: {
    rejectPattern: 'answer 400 to bodies matching',
    failRate: 'share of requests answered 503 (0..1)',
    delayMs: 'wait before each answer',
    record: 'append one JSON line per request (before the answer)',
    quiet: 'no per-request output',
    verbose: 'also print each body',
  },
  start: (common, own: CliOptions, io) => startHttpSink({ ...common, status: own.status }, io),
});

/** Parse arguments and start (see `SinkCli.main`). */
export const main = cli.main;

if (require.main === module) {
  cli.runScript();
}
