/**
 * A standalone MLLP receiver, to try the engine's MLLP destinations and for end-to-end tests.
 *
 *   npm run sink:mllp -- [--host 127.0.0.1] [--port 6661] [--ack AA|AE|AR]
 *                        [--reject-pattern REGEX] [--fail-rate 0..1] [--seed N]
 *                        [--delay-ms N] [--record FILE] [--quiet] [--verbose]
 *
 * Prints `sink-mllp listening on <host>:<port>` once listening (`--port 0`: any free port, the
 * line has the real one), then one line per message: time, sequence number, MSH-9, MSH-10 and
 * the ACK code (`--verbose`: also the message, one segment per line; `--quiet`: nothing).
 *
 * Every message is answered with an ACK built by libs/hl7 `buildAck` (MSA-2 = MSH-10):
 * `--reject-pattern` first (AE with an ERR), then `--fail-rate` (AR), else `--ack` (AA).
 * Unreadable messages get AE. `--record FILE` appends one JSON line per message
 * ({at, seq, controlId, type, ack, pid3, message}) synchronously before the ACK is written.
 * Frames may be split or merged in any way; messages on one connection are answered in order.
 * SIGINT / SIGTERM close the listener and connections and exit 0.
 */
import net from 'node:net';
import { Command, CommanderError, Option } from 'commander';
import {
  type AckCode,
  type AckError,
  buildAck,
  encodeMllp,
  type Hl7Message,
  MllpDecoder,
  parseMessage,
} from '@engine/hl7';
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

export type SinkAckCode = 'AA' | 'AE' | 'AR';

export interface MllpSinkOptions extends CommonSinkOptions {
  /** Answer for messages neither rejected nor failed. */
  ack: SinkAckCode;
}

export const MLLP_SINK_DEFAULTS: MllpSinkOptions = {
  host: '127.0.0.1',
  port: 6661,
  ack: 'AA',
  failRate: 0,
  delayMs: 0,
  quiet: false,
  verbose: false,
};

/** One line of the `--record` file. */
export interface MllpSinkRecord {
  at: string;
  seq: number;
  controlId: string;
  /** MSH-9.1^MSH-9.2, e.g. ADT^A01. */
  type: string;
  ack: AckCode;
  /** PID-3 repetitions as `id^^^authority^type`. */
  pid3: string[];
  /** The message text (segments separated by \r). */
  message: string;
}

export interface MllpSink {
  host: string;
  port: number;
  /** Messages received so far. */
  readonly received: number;
  close(): Promise<void>;
}

/** Largest message accepted (the decoder drops bigger frames; they are answered AE). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function messageType(msg: Hl7Message): string {
  const trigger = msg.triggerEvent;
  return trigger === '' ? msg.messageType : `${msg.messageType}^${trigger}`;
}

function pid3(msg: Hl7Message): string[] {
  const count = msg.getAll('PID-3').length;
  const ids: string[] = [];
  for (let r = 1; r <= count; r++) {
    const part = (c: number): string => msg.get(`PID-3[${r}].${c}`) ?? '';
    ids.push(`${part(1)}^^^${part(4)}^${part(5)}`);
  }
  return ids;
}

interface Decision {
  code: SinkAckCode;
  error?: AckError;
}

/** Start listening; resolves once the port is bound. */
export async function startMllpSink(
  options: MllpSinkOptions,
  io: SinkIo = processIo,
): Promise<MllpSink> {
  const fails = failureDice(options.failRate, options.seed);
  const sockets = new Set<net.Socket>();
  let seq = 0;

  const decide = (text: string): Decision => {
    const failed = fails(); // one draw per message, whatever the outcome: reproducible runs
    if (options.rejectPattern?.test(text) === true) {
      return { code: 'AE', error: { code: 207, text: 'message matches --reject-pattern' } };
    }
    if (failed) {
      return { code: 'AR', error: { code: 207, text: 'simulated failure (--fail-rate)' } };
    }
    switch (options.ack) {
      case 'AA':
        return { code: 'AA' };
      case 'AE':
        return { code: 'AE', error: { code: 207, text: 'sink answers AE (--ack AE)' } };
      case 'AR':
        return { code: 'AR', error: { code: 207, text: 'sink answers AR (--ack AR)' } };
    }
  };

  /** Build the answer to one frame (and its record), in arrival order. */
  const handle = async (payload: Buffer | undefined, oversize: number): Promise<Buffer> => {
    const n = ++seq;
    const at = new Date();
    let msg: Hl7Message | undefined;
    let text = '';
    let problem: string | undefined;
    if (payload === undefined) {
      problem = `message of ${oversize} bytes exceeds ${MAX_MESSAGE_BYTES}`;
    } else {
      try {
        msg = parseMessage(payload);
        text = msg.toString();
      } catch (err) {
        problem = `unreadable message: ${(err as Error).message}`;
        text = payload.toString('latin1');
      }
    }
    let decision: Decision;
    if (msg === undefined) {
      fails(); // keep the dice in step with the message count
      decision = { code: 'AE', error: { code: 100, text: problem } };
    } else {
      decision = decide(text);
    }
    await sleep(options.delayMs);

    const ack = buildAck(msg, { code: decision.code, error: decision.error });
    const controlId = msg?.controlId ?? '';
    const type = msg === undefined ? '' : messageType(msg);
    appendRecord(options.record, {
      at: at.toISOString(),
      seq: n,
      controlId,
      type,
      ack: decision.code,
      pid3: msg === undefined ? [] : pid3(msg),
      message: text,
    } satisfies MllpSinkRecord);
    if (!options.quiet) {
      io.out(
        `${at.toISOString()} #${n} ${oneLine(type, 20) || '-'} ${oneLine(controlId, 40) || '-'} ` +
          `${decision.code}${problem === undefined ? '' : ` (${problem})`}\n`,
      );
      if (options.verbose && text !== '') {
        for (const segment of text.split(/\r\n|\r|\n/)) {
          if (segment !== '') {
            io.out(`    ${segment}\n`);
          }
        }
      }
    }
    return encodeMllp(ack.toBuffer());
  };

  const onConnection = (socket: net.Socket): void => {
    sockets.add(socket);
    const decoder = new MllpDecoder({ maxFrameBytes: MAX_MESSAGE_BYTES });
    let queue: Promise<void> = Promise.resolve();
    const answer = (payload: Buffer | undefined, oversize = 0): void => {
      queue = queue
        .then(() => handle(payload, oversize))
        .then((frame) => {
          if (!socket.destroyed) {
            socket.write(frame);
          }
        })
        .catch((err: unknown) => {
          io.err(`sink-mllp: ${String(err)}\n`);
          socket.destroy();
        });
    };
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        switch (event.type) {
          case 'frame':
            answer(event.payload);
            break;
          case 'oversize':
            answer(undefined, event.bytes);
            break;
          case 'noise':
            io.err(`sink-mllp: ${event.bytes} bytes outside MLLP frames ignored\n`);
            break;
        }
      }
      if (decoder.noiseLimitExceeded) {
        io.err('sink-mllp: peer is not speaking MLLP, closing the connection\n');
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };

  const server = net.createServer(onConnection);
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
      return seq;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) {
          socket.destroy();
        }
      }),
  };
}

interface CliOptions {
  host: string;
  port: number;
  ack: SinkAckCode;
  rejectPattern?: RegExp;
  failRate: number;
  seed?: string;
  delayMs: number;
  record?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export function buildProgram(io: SinkIo): Command {
  const d = MLLP_SINK_DEFAULTS;
  return new Command('sink-mllp')
    .description('MLLP receiver that ACKs every message (to try the engine and for tests)')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .option('--host <host>', 'address to listen on', d.host)
    .option('--port <port>', 'port to listen on (0 = any free port)', parsePort, d.port)
    .addOption(
      new Option('--ack <code>', 'answer for every message')
        .choices(['AA', 'AE', 'AR'])
        .default(d.ack),
    )
    .option('--reject-pattern <regex>', 'answer AE (with an ERR) to messages matching', parseRegex)
    .option('--fail-rate <rate>', 'share of messages answered AR (0..1)', parseRate, d.failRate)
    .option('--seed <n>', 'seed of --fail-rate (same seed, same failures)')
    .option('--delay-ms <ms>', 'wait before each ACK', parseNonNegativeInt, d.delayMs)
    .option('--record <file>', 'append one JSON line per message (before the ACK)')
    .option('--quiet', 'no per-message output')
    .option('--verbose', 'also print each message, one segment per line');
}

/**
 * Parse arguments and start; resolves with the sink (or null after --help). With `signals`,
 * SIGINT / SIGTERM close the sink and exit 0 (set up before the listening line is printed).
 */
export async function main(
  argv: string[],
  io: SinkIo = processIo,
  signals = false,
): Promise<MllpSink | null> {
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
  const sink = await startMllpSink(
    {
      host: o.host,
      port: o.port,
      ack: o.ack,
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
  io.out(`sink-mllp listening on ${formatAddress(sink.host, sink.port)}\n`);
  return sink;
}

if (require.main === module) {
  main(process.argv.slice(2), processIo, true).then(
    () => undefined,
    (err: unknown) => {
      if (!(err instanceof CommanderError)) {
        console.error(`sink-mllp: ${err instanceof Error ? err.message : String(err)}`);
      }
      process.exit(2);
    },
  );
}
