/**
 * What the test sinks (sink-mllp.ts, sink-http.ts) share: option parsers, the failure dice,
 * the record file, output and signal handling.
 */
import { appendFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
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
