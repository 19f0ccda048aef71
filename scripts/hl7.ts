/**
 * Analyst CLI for HL7 v2 over MLLP.
 *
 *   npm run hl7 -- send FILE... [--host H] [--port P] [--tls] [--ca F] [--cert F] [--key F]
 *                               [--timeout MS] [--raw]
 *
 * `send` splits each file into messages (one message, an FHS/BHS batch, or messages separated
 * by blank lines), sends them in order over one MLLP connection, waits for each ACK and prints
 * one line per message: file, index, MSH-10, MSA-1, MSA-2 and the ERR text if any. Message
 * content (patient data) is never printed.
 *
 * Exit codes: 0 every ACK is AA/CA; 1 any AE/AR/CE/CR, timeout, unreadable ACK or connection
 * failure; 2 usage errors (bad option, missing or empty file).
 *
 *   npm run hl7 -- generate --people N [--duplicate-rate R] [--out DIR] [--seed S]
 *                           [--authorities HOSP,CLINIC,LAB] [--twins-rate R] [--junior-senior-rate R]
 *                           [--common-name-rate R] [--same-authority-rate R]
 *                           [--messages-per-person M] [--mllp] [--split]
 *
 * `generate` writes a synthetic ADT feed of fictitious people with duplicate records (typos,
 * nicknames, transposed dates, married names, moves...) and hard negatives (twins,
 * junior/senior, common names), plus the truth file; see scripts/generate/generate.ts. Same
 * options, same bytes. Progress goes to stderr, one summary line to stdout (exit 0).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { encodeMllp, isBatch, MllpDecoder, parseMessage, splitMessages } from '@engine/hl7';
import {
  buildDataset,
  type Dataset,
  DEFAULT_OPTIONS,
  type GenerateOptions,
  writeDataset,
} from './generate/generate';

export const EXIT_OK = 0;
export const EXIT_NOT_ACCEPTED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** A usage problem found after option parsing (missing file, unreadable certificate...). */
class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// MLLP client connection

export interface ConnectOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** TLS settings; undefined for plain TCP. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

class TimeoutError extends Error {}

/** One MLLP connection: send a frame, wait for the next frame (the ACK). */
export class MllpClientConnection {
  private readonly decoder = new MllpDecoder();
  private readonly frames: Buffer[] = [];
  private waiter: { resolve: (frame: Buffer) => void; reject: (err: Error) => void } | null = null;
  private closedWith: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) {
        if (event.type === 'frame') {
          this.frames.push(event.payload);
        }
      }
      this.deliver();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  static open(options: ConnectOptions): Promise<MllpClientConnection> {
    return new Promise((resolve, reject) => {
      const { host, port } = options;
      const socket = options.tls
        ? tls.connect({
            host,
            port,
            ca: options.tls.ca,
            cert: options.tls.cert,
            key: options.tls.key,
            servername: net.isIP(host) === 0 ? host : undefined,
          })
        : net.connect({ host, port });
      const connectEvent = options.tls ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`no connection within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
      socket.once(connectEvent, () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new MllpClientConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Send one framed payload and resolve with the next frame received. */
  request(framed: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.closedWith) {
      return Promise.reject(this.closedWith);
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new TimeoutError(`no ACK within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.socket.write(framed);
      this.deliver();
    });
  }

  close(): void {
    this.closedWith ??= new Error('connection closed');
    this.socket.destroy();
  }

  private deliver(): void {
    if (this.waiter && this.frames.length > 0) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve(this.frames.shift() as Buffer);
    }
  }

  private fail(err: Error): void {
    this.closedWith ??= err;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.reject(err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ACK reading

export interface AckSummary {
  code: string;
  controlId: string;
  errorText: string;
}

/** Keep printed values on one line and short (they come from the network). */
function clean(value: string | undefined, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const text = (value ?? '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

export function readAck(frame: Buffer): AckSummary {
  const ack = parseMessage(frame);
  const first = (...paths: string[]): string => {
    for (const path of paths) {
      const value = ack.get(path);
      if (value) {
        return value;
      }
    }
    return '';
  };
  return {
    code: clean(ack.get('MSA-1')),
    controlId: clean(ack.get('MSA-2')),
    // ERR-8 user message (2.5+), ERR-3.2 error text (2.5+), ERR-1.4.2 (before 2.5), MSA-3.
    errorText: clean(first('ERR-8', 'ERR-3.2', 'ERR-1.4.2', 'MSA-3')),
  };
}

function controlIdOf(message: Buffer): string {
  try {
    return clean(parseMessage(message).controlId) || '?';
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------------------------
// send

export interface SendOptions {
  host: string;
  port: number;
  timeout: number;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  raw?: boolean;
  /** Send a file holding an FHS/BHS batch as one frame (the receiver answers a batch of ACKs). */
  asBatch?: boolean;
}

interface Outgoing {
  file: string;
  index: number;
  payload: Buffer;
  /** A whole batch in one frame: the MSH-10 of each of its messages, in order. */
  batchOf?: string[];
}

/** Segment terminator is CR; files edited on Unix or Windows carry LF or CRLF. */
function normalizeLineEnds(message: Buffer): Buffer {
  if (message.indexOf(0x0a) === -1) {
    return message;
  }
  return Buffer.from(message.toString('latin1').replace(/\r?\n/g, '\r'), 'latin1');
}

function errnoOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

function readInputs(files: string[], raw: boolean, asBatch: boolean): Outgoing[] {
  const outgoing: Outgoing[] = [];
  for (const file of files) {
    let content: Buffer;
    try {
      content = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${errnoOf(err)}`);
    }
    const messages = splitMessages(content);
    if (messages.length === 0) {
      throw new UsageError(`no HL7 message in ${file}`);
    }
    if (asBatch && isBatch(content)) {
      outgoing.push({
        file,
        index: 1,
        payload: raw ? content : normalizeLineEnds(content),
        batchOf: messages.filter((m) => !isBatch(m)).map(controlIdOf),
      });
      continue;
    }
    messages.forEach((message, i) => {
      outgoing.push({ file, index: i + 1, payload: raw ? message : normalizeLineEnds(message) });
    });
  }
  return outgoing;
}

function readOptionalFile(path: string | undefined, what: string): Buffer | undefined {
  if (path === undefined) {
    return undefined;
  }
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${errnoOf(err)}`);
  }
}

const ACCEPTED = new Set(['AA', 'CA']);

export async function send(files: string[], options: SendOptions, io: CliIo): Promise<number> {
  const outgoing = readInputs(files, options.raw === true, options.asBatch === true);
  const useTls = options.tls === true || [options.ca, options.cert, options.key].some(Boolean);
  const connect: ConnectOptions = {
    host: options.host,
    port: options.port,
    timeoutMs: options.timeout,
    tls: useTls
      ? {
          ca: readOptionalFile(options.ca, 'CA file'),
          cert: readOptionalFile(options.cert, 'certificate'),
          key: readOptionalFile(options.key, 'key'),
        }
      : undefined,
  };

  let exitCode = EXIT_OK;
  let connection: MllpClientConnection | null = null;
  try {
    for (const msg of outgoing) {
      const controlId = msg.batchOf ? 'batch' : controlIdOf(msg.payload);
      const prefix = msg.batchOf
        ? `${msg.file} batch of ${msg.batchOf.length}`
        : `${msg.file} #${msg.index} MSH-10=${controlId}`;
      let framed: Buffer;
      try {
        framed = encodeMllp(msg.payload);
      } catch {
        io.out(`${prefix} NOT-SENT error="message contains MLLP control bytes (VT/FS)"\n`);
        exitCode = EXIT_NOT_ACCEPTED;
        continue;
      }
      if (connection === null || connection.closed) {
        try {
          connection = await MllpClientConnection.open(connect);
        } catch (err) {
          io.err(`cannot connect to ${options.host}:${options.port}: ${(err as Error).message}\n`);
          return EXIT_NOT_ACCEPTED;
        }
      }
      let frame: Buffer;
      try {
        frame = await connection.request(framed, options.timeout);
      } catch (err) {
        const status = err instanceof TimeoutError ? 'TIMEOUT' : 'NO-ACK';
        io.out(`${prefix} ${status} error="${clean((err as Error).message)}"\n`);
        exitCode = EXIT_NOT_ACCEPTED;
        // The connection state is unknown (a late ACK would be taken for the next message).
        connection.close();
        connection = null;
        continue;
      }
      if (msg.batchOf) {
        if (!reportBatchAck(msg.file, msg.batchOf, frame, io)) {
          exitCode = EXIT_NOT_ACCEPTED;
        }
        continue;
      }
      if (!reportAck(prefix, controlId, frame, io)) {
        exitCode = EXIT_NOT_ACCEPTED;
      }
    }
  } finally {
    connection?.close();
  }
  return exitCode;
}

/** Prints one ACK's line; true when it accepts the message it names. */
function reportAck(prefix: string, controlId: string, frame: Buffer, io: CliIo): boolean {
  let ack: AckSummary;
  try {
    ack = readAck(frame);
  } catch (err) {
    io.out(`${prefix} BAD-ACK error="${clean((err as Error).message)}"\n`);
    return false;
  }
  let line = `${prefix} MSA-1=${ack.code || '?'} MSA-2=${ack.controlId}`;
  if (ack.errorText) {
    line += ` ERR="${ack.errorText.replace(/"/g, "'")}"`;
  }
  let ok = ACCEPTED.has(ack.code);
  if (ok && controlId !== '?' && ack.controlId !== controlId) {
    line += ' (MSA-2 does not match MSH-10)';
    ok = false;
  }
  io.out(`${line}\n`);
  return ok;
}

/** Prints a line per ACK of a batch acknowledgement; true when every message was accepted. */
function reportBatchAck(file: string, sent: string[], frame: Buffer, io: CliIo): boolean {
  if (!isBatch(frame)) {
    // A receiver without batch support answers with a single ACK (usually a reject): which of
    // the messages it took is unknown, so this never counts as accepted.
    reportAck(`${file} batch of ${sent.length}`, '?', frame, io);
    return false;
  }
  const acks = splitMessages(frame).filter((m) => !isBatch(m));
  let ok = acks.length === sent.length;
  acks.forEach((a, i) => {
    // Matched by MSA-2 (a receiver may leave some ACKs out), else by position.
    let n = i;
    try {
      const at = sent.indexOf(readAck(a).controlId);
      n = at === -1 ? i : at;
    } catch {
      // reported as BAD-ACK below
    }
    const id = sent[n] ?? '?';
    ok = reportAck(`${file} #${n + 1} MSH-10=${id}`, id, a, io) && ok;
  });
  if (acks.length !== sent.length) {
    io.out(`${file} batch: ${sent.length} message(s) sent, ${acks.length} ACK(s) in the answer\n`);
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// generate

export interface GenerateCliOptions {
  people: number;
  duplicateRate: number;
  out: string;
  seed: string;
  authorities: string[];
  twinsRate: number;
  juniorSeniorRate: number;
  commonNameRate: number;
  sameAuthorityRate: number;
  messagesPerPerson: number;
  mllp?: boolean;
  split?: boolean;
}

/** Runs with more people than this report progress on stderr. */
const PROGRESS_PEOPLE = 20000;
export const MAX_PEOPLE = 5_000_000;

export function generate(options: GenerateCliOptions, io: CliIo): number {
  const started = performance.now();
  const { twinsRate, juniorSeniorRate, commonNameRate } = options;
  if (twinsRate + juniorSeniorRate + commonNameRate > 1) {
    throw new UsageError(
      '--twins-rate, --junior-senior-rate and --common-name-rate add up to more than 1',
    );
  }
  const generateOptions: GenerateOptions = {
    people: options.people,
    duplicateRate: options.duplicateRate,
    seed: options.seed,
    authorities: options.authorities,
    twinsRate,
    juniorSeniorRate,
    commonNameRate,
    messagesPerPerson: options.messagesPerPerson,
    sameAuthorityRate: options.sameAuthorityRate,
  };
  const progress =
    options.people > PROGRESS_PEOPLE
      ? (line: string): void => io.err(`generate: ${line}\n`)
      : undefined;
  progress?.(`planning ${options.people} people`);
  let dataset: Dataset;
  try {
    dataset = buildDataset(generateOptions);
  } catch (err) {
    if (err instanceof RangeError) {
      throw new UsageError(err.message);
    }
    throw err;
  }
  progress?.(`writing ${dataset.messageCount} messages to ${options.out}`);
  try {
    writeDataset(dataset, options.out, { mllp: options.mllp, split: options.split, progress });
  } catch (err) {
    io.err(`error: cannot write ${options.out}: ${errnoOf(err)}\n`);
    return EXIT_NOT_ACCEPTED;
  }
  const s = dataset.summary();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  io.out(
    `generated ${s.people} people, ${s.records} records, ${s.messages} messages in ${seconds} s ` +
      `(duplicates: ${s.duplicates.people} people, ${s.duplicates.records} records, ` +
      `${s.duplicates.sameAuthority} same-authority; hard negatives: ` +
      `${s.hardNegatives.twinPairs} twin pairs, ${s.hardNegatives.juniorSeniorPairs} junior/senior ` +
      `pairs, ${s.hardNegatives.commonNamePeople} common-name people) -> ${options.out}\n`,
  );
  return EXIT_OK;
}

// ---------------------------------------------------------------------------------------------
// command line

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected a TCP port (1-65535)');
  }
  return port;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) {
    throw new InvalidArgumentError('expected a positive integer');
  }
  return n;
}

function parseRate(value: string): number {
  const n = Number(value);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value) || n > 1) {
    throw new InvalidArgumentError('expected a rate between 0 and 1');
  }
  return n;
}

function parsePeople(value: string): number {
  const n = parsePositiveInt(value);
  if (n > MAX_PEOPLE) {
    throw new InvalidArgumentError(`expected at most ${MAX_PEOPLE}`);
  }
  return n;
}

function parseMessagesPerPerson(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d*)?$/.test(value) || n < 1 || n > 20) {
    throw new InvalidArgumentError('expected a number from 1 to 20');
  }
  return n;
}

function parseAuthorities(value: string): string[] {
  const list = value.split(',').map((a) => a.trim());
  if (list.some((a) => !/^[A-Za-z0-9_.-]{1,20}$/.test(a)) || new Set(list).size !== list.length) {
    throw new InvalidArgumentError(
      'expected distinct comma-separated names (letters, digits, _ . -), e.g. HOSP,CLINIC,LAB',
    );
  }
  return list;
}

export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('hl7')
    .description('HL7 v2 analyst tools (MLLP)')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  program
    .command('send')
    .description('send HL7 files over MLLP and print one line per message with its ACK')
    .argument(
      '<files...>',
      'files with one message, a FHS/BHS batch or blank-line separated messages',
    )
    .option('--host <host>', 'receiver host', '127.0.0.1')
    .option('--port <port>', 'receiver port', parsePort, 2575)
    .option('--timeout <ms>', 'ACK (and connect) timeout in milliseconds', parsePositiveInt, 10000)
    .option('--tls', 'connect with TLS (implied by --ca, --cert, --key)')
    .option('--ca <file>', 'PEM CA bundle to verify the server')
    .option('--cert <file>', 'PEM client certificate (mutual TLS)')
    .option('--key <file>', 'PEM client key (mutual TLS)')
    .option('--raw', 'send bytes as they are (default: LF and CRLF line ends become CR)')
    .option(
      '--as-batch',
      'send a file holding an FHS/BHS batch as one frame and print each ACK of the batch answer (default: one frame per message)',
    )
    .action(async (files: string[], options: SendOptions) => {
      setExitCode(await send(files, options, io));
    });

  const d = DEFAULT_OPTIONS;
  program
    .command('generate')
    .description(
      'write a synthetic ADT feed (fictitious people, duplicate records with realistic errors, ' +
        'hard negatives) and its truth file',
    )
    .requiredOption('--people <n>', 'number of distinct (real) people', parsePeople)
    .option(
      '--duplicate-rate <rate>',
      'share of people with a duplicate record',
      parseRate,
      d.duplicateRate,
    )
    .option('--out <dir>', 'output directory', 'data/generated')
    .option('--seed <seed>', 'seed: same seed and options, same files', d.seed)
    .option(
      '--authorities <list>',
      'assigning authorities (PID-3.4), comma-separated',
      parseAuthorities,
      d.authorities,
    )
    .option('--twins-rate <rate>', 'share of people who are twins', parseRate, d.twinsRate)
    .option(
      '--junior-senior-rate <rate>',
      'share of people in a junior/senior pair',
      parseRate,
      d.juniorSeniorRate,
    )
    .option(
      '--common-name-rate <rate>',
      'share of people with a very common full name (JOHN SMITH)',
      parseRate,
      d.commonNameRate,
    )
    .option(
      '--same-authority-rate <rate>',
      'share of duplicate records made at the same authority',
      parseRate,
      d.sameAuthorityRate,
    )
    .option(
      '--messages-per-person <m>',
      'mean messages per source record (registration + A08 updates)',
      parseMessagesPerPerson,
      d.messagesPerPerson,
    )
    .option('--mllp', 'also write messages.mllp (MLLP frames back to back)')
    .option('--split', 'also write one file per message under messages/')
    .action((options: GenerateCliOptions) => {
      setExitCode(generate(options, io));
    });

  return program;
}

/** Run the CLI with user arguments (no `node script`); resolves with the exit code. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let exitCode = EXIT_OK;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  return exitCode;
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = EXIT_NOT_ACCEPTED;
    },
  );
}
