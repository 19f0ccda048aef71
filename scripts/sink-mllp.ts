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
import { Option } from 'commander';
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

/** A listening MLLP sink (`received`: messages so far). */
export type MllpSink = Sink;

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
  const judge = sinkPolicy(options);
  const sockets = new Set<net.Socket>();
  let seq = 0;

  /** The ACK for a message text (undefined: unreadable or too large, for `problem`). */
  const decide = (text: string | undefined, problem: string | undefined): Decision => {
    const verdict = judge(text);
    switch (verdict) {
      case 'unreadable':
        return { code: 'AE', error: { code: 100, text: problem } };
      case 'rejected':
        return { code: 'AE', error: { code: 207, text: 'message matches --reject-pattern' } };
      case 'failed':
        return { code: 'AR', error: { code: 207, text: 'simulated failure (--fail-rate)' } };
      case 'configured':
        switch (options.ack) {
          case 'AA':
            return { code: 'AA' };
          case 'AE':
            return { code: 'AE', error: { code: 207, text: 'sink answers AE (--ack AE)' } };
          case 'AR':
            return { code: 'AR', error: { code: 207, text: 'sink answers AR (--ack AR)' } };
        }
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
    const decision = decide(msg === undefined ? undefined : text, problem);
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

  return listenSink(
    net.createServer(onConnection),
    options,
    () => seq,
    () => {
      for (const socket of sockets) {
        socket.destroy();
      }
    },
  );
}

type CliOptions = CommonCliOptions & { ack: SinkAckCode };

const cli = sinkCli({
  name: 'sink-mllp',
  description: 'MLLP receiver that ACKs every message (to try the engine and for tests)',
  defaults: MLLP_SINK_DEFAULTS,
  addOptions: (program) =>
    program.addOption(
      new Option('--ack <code>', 'answer for every message')
        .choices(['AA', 'AE', 'AR'])
        .default(MLLP_SINK_DEFAULTS.ack),
    ),
  help: {
    rejectPattern: 'answer AE (with an ERR) to messages matching',
    failRate: 'share of messages answered AR (0..1)',
    delayMs: 'wait before each ACK',
    record: 'append one JSON line per message (before the ACK)',
    quiet: 'no per-message output',
    verbose: 'also print each message, one segment per line',
  },
  start: (common, own: CliOptions, io) => startMllpSink({ ...common, ack: own.ack }, io),
});

/** Parse arguments and start (see `SinkCli.main`). */
export const main = cli.main;

if (require.main === module) {
  cli.runScript();
}
