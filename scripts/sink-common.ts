/**
 * What the test sinks (sink-mllp.ts, sink-http.ts) share: the command line (common options,
 * parsing, the listening line, the script entry point), the answer policy (reject pattern,
 * failure dice), the record file, listening and closing, output and signal handling.
 */
import { appendFileSync } from 'node:fs';
import type net from 'node:net';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { Rng } from './generate/rng';

export interface SinkIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: SinkIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Options both sinks take. */
export interface CommonSinkOptions {
  host: string;
  /** 0 = an ephemeral port (printed on the listening line). */
  port: number;
  /** Messages whose text matches are refused (AE / HTTP 400). */
  rejectPattern?: RegExp;
  /** Share of messages answered with a transient failure (AR / HTTP 503), 0..1. */
  failRate: number;
  /** Seed of the fail-rate dice (same seed, same failures); default: random. */
  seed?: string;
  /** Wait before answering, in milliseconds. */
  delayMs: number;
  /** Append one JSON line per message to this file (before the answer is sent). */
  record?: string;
  quiet: boolean;
  verbose: boolean;
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw new InvalidArgumentError('expected a TCP port (0-65535; 0 = any free port)');
  }
  return n;
}

export function parseNonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a non-negative integer');
  }
  return Number(value);
}

export function parseRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('expected a rate between 0 and 1');
  }
  return n;
}

export function parseRegex(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (err) {
    throw new InvalidArgumentError(`not a regular expression: ${(err as Error).message}`);
  }
}

/** True with probability `rate`: seeded (reproducible) or Math.random. One draw per message. */
export function failureDice(rate: number, seed: string | undefined): () => boolean {
  const rng = seed === undefined ? undefined : new Rng(seed);
  return () => {
    const x = rng === undefined ? Math.random() : rng.next();
    return x < rate;
  };
}

/**
 * What to answer to one message: `unreadable` (no text: unparseable or too large), else
 * `rejected` when it matches `--reject-pattern`, else `failed` by the `--fail-rate` dice, else
 * `configured` (the sink's `--ack` / `--status`).
 */
export type SinkVerdict = 'unreadable' | 'rejected' | 'failed' | 'configured';

/**
 * The answer policy both sinks follow. The dice are thrown once per message whatever the
 * verdict (unreadable messages included), so that a seed gives the same failures on every run.
 */
export function sinkPolicy(
  options: Pick<CommonSinkOptions, 'rejectPattern' | 'failRate' | 'seed'>,
): (text: string | undefined) => SinkVerdict {
  const fails = failureDice(options.failRate, options.seed);
  return (text) => {
    const failed = fails();
    if (text === undefined) {
      return 'unreadable';
    }
    if (options.rejectPattern?.test(text) === true) {
      return 'rejected';
    }
    return failed ? 'failed' : 'configured';
  };
}

/** Append one JSON line synchronously (a reader who got the answer sees the line). */
export function appendRecord(file: string | undefined, record: object): void {
  if (file !== undefined) {
    appendFileSync(file, `${JSON.stringify(record)}\n`);
  }
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** Printable on one line: control characters become spaces, at most `max` characters. */
export function oneLine(value: string | undefined, max = 80): string {
  // eslint-disable-next-line no-control-regex
  const text = (value ?? '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** `host:port`, brackets around IPv6 literals. */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A listening sink. */
export interface Sink {
  host: string;
  port: number;
  /** Messages (or requests) received so far. */
  readonly received: number;
  close(): Promise<void>;
}

/**
 * Binds `server` to `options.host` / `options.port` (0: any free port) and resolves, once
 * listening, with the sink: `received()` counts what came in, `dropConnections()` ends the
 * open connections when the sink closes.
 */
export async function listenSink(
  server: net.Server,
  options: Pick<CommonSinkOptions, 'host' | 'port'>,
  received: () => number,
  dropConnections: () => void,
): Promise<Sink> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: options.host,
    port,
    get received() {
      return received();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropConnections();
      }),
  };
}

/** Close on SIGINT / SIGTERM, then exit 0 (1 if closing failed). */
export function exitOnSignals(close: () => Promise<void>, io: SinkIo = processIo): void {
  let closing = false;
  const stop = (): void => {
    if (closing) {
      return;
    }
    closing = true;
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        io.err(`error while closing: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The help texts of the common options, in the sink's own words. */
export interface SinkOptionHelp {
  rejectPattern: string;
  failRate: string;
  delayMs: string;
  record: string;
  quiet: string;
  verbose: string;
}

/** The common options as commander hands them over (the flags absent when not given). */
export type CommonCliOptions = Omit<CommonSinkOptions, 'quiet' | 'verbose'> & {
  quiet?: boolean;
  verbose?: boolean;
};

/** What makes one sink's command line. */
export interface SinkCliSpec<C extends CommonCliOptions, S extends Sink> {
  /** The command name, also the start of the listening line and of error messages. */
  name: string;
  description: string;
  defaults: CommonSinkOptions;
  /** Adds the sink's own options (listed after --port). */
  addOptions: (program: Command) => Command;
  help: SinkOptionHelp;
  /** Starts the sink from the common options and the sink's own (`cli`). */
  start: (common: CommonSinkOptions, cli: C, io: SinkIo) => Promise<S>;
}

export interface SinkCli<S extends Sink> {
  /**
   * The command line: `--host`, `--port`, the sink's own options, then the common ones
   * (`--reject-pattern` … `--verbose`). Output goes to `io`; errors and --help throw a
   * CommanderError instead of exiting.
   */
  buildProgram: (io: SinkIo) => Command;
  /**
   * Parse arguments and start; resolves with the sink (or null after --help). With `signals`,
   * SIGINT / SIGTERM close the sink and exit 0 (set up before the listening line,
   * `<name> listening on <host>:<port>`, is printed).
   */
  main: (argv: string[], io?: SinkIo, signals?: boolean) => Promise<S | null>;
  /**
   * The script's entry point (`if (require.main === module)`): `main` on the process
   * arguments, with signals; exits 2 when the arguments are bad (commander has said why) or
   * the sink cannot start.
   */
  runScript: () => void;
}

/** The command line of a sink, from its spec. */
export function sinkCli<C extends CommonCliOptions, S extends Sink>(
  spec: SinkCliSpec<C, S>,
): SinkCli<S> {
  const buildProgram = (io: SinkIo): Command => {
    const { defaults: d, help } = spec;
    const program = new Command(spec.name)
      .description(spec.description)
      .exitOverride()
      .showHelpAfterError()
      .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
      .option('--host <host>', 'address to listen on', d.host)
      .option('--port <port>', 'port to listen on (0 = any free port)', parsePort, d.port);
    return spec
      .addOptions(program)
      .option('--reject-pattern <regex>', help.rejectPattern, parseRegex)
      .option('--fail-rate <rate>', help.failRate, parseRate, d.failRate)
      .option('--seed <n>', 'seed of --fail-rate (same seed, same failures)')
      .option('--delay-ms <ms>', help.delayMs, parseNonNegativeInt, d.delayMs)
      .option('--record <file>', help.record)
      .option('--quiet', help.quiet)
      .option('--verbose', help.verbose);
  };

  const main = async (argv: string[], io = processIo, signals = false): Promise<S | null> => {
    const program = buildProgram(io);
    try {
      program.parse(argv, { from: 'user' });
    } catch (err) {
      if (err instanceof CommanderError && err.exitCode === 0) {
        return null;
      }
      throw err;
    }
    const o = program.opts<C>();
    const common: CommonSinkOptions = {
      host: o.host,
      port: o.port,
      rejectPattern: o.rejectPattern,
      failRate: o.failRate,
      seed: o.seed,
      delayMs: o.delayMs,
      record: o.record,
      quiet: o.quiet === true,
      verbose: o.verbose === true,
    };
    const sink = await spec.start(common, o, io);
    if (signals) {
      exitOnSignals(() => sink.close(), io);
    }
    io.out(`${spec.name} listening on ${formatAddress(sink.host, sink.port)}\n`);
    return sink;
  };

  const runScript = (): void => {
    main(process.argv.slice(2), processIo, true).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof CommanderError)) {
          console.error(`${spec.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
        process.exit(2);
      },
    );
  };

  return { buildProgram, main, runScript };
}
