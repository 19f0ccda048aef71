import { bufferIsAscii, bufferIsUtf8, decodeBytes, encodeText, resolveCharset } from './charset';
import {
  DEFAULT_DELIMITERS,
  type Delimiters,
  delimitersFrom,
  encodingCharacters,
} from './delimiters';
import { Hl7ParseError } from './errors';
import { encodeEscapes } from './escape';
import { Hl7Message } from './message';

export interface ParseOptions {
  /**
   * Charset used when MSH-18 is empty (default 'UTF-8': if the bytes are not valid UTF-8,
   * fall back to windows-1252). Any MSH-18 value or iconv-lite encoding name.
   */
  defaultCharset?: string;
}

const WINDOWS_1252 = 'windows-1252';

/** First position at or after `from` that is not whitespace, a control character or a BOM. */
function skipLeading(text: string, from: number): number {
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c > 0x20 && c !== 0xfeff) {
      break;
    }
    i++;
  }
  return i;
}

function lineEnd(text: string, from: number): number {
  const cr = text.indexOf('\r', from);
  const lf = text.indexOf('\n', from);
  if (cr === -1) {
    return lf === -1 ? text.length : lf;
  }
  return lf === -1 || cr < lf ? cr : lf;
}

interface Header {
  start: number;
  end: number;
  delimiters: Delimiters;
  fields: string[];
  charset: string;
}

/** Read MSH-1, MSH-2 and MSH-18 from the first segment (ASCII-safe: delimiters are ASCII). */
function readHeader(text: string, from: number): Header {
  const start = skipLeading(text, from);
  if (start >= text.length) {
    throw new Hl7ParseError('EMPTY', 'The message is empty');
  }
  if (!text.startsWith('MSH', start)) {
    const what = /^(FHS|BHS)/.test(text.slice(start, start + 3))
      ? 'a batch (use splitMessages)'
      : 'not an HL7 v2 message';
    throw new Hl7ParseError('NO_MSH', `The payload does not start with an MSH segment: ${what}`);
  }
  const end = lineEnd(text, start);
  const fs = text.charAt(start + 3);
  if (fs === '' || start + 3 >= end) {
    throw new Hl7ParseError('BAD_DELIMITERS', 'MSH has no field separator');
  }
  const line = text.slice(start, end);
  const fields = line.split(fs);
  const delimiters = delimitersFrom(fs, fields[1] ?? '');
  // MSH-18 (fields[17]): the first repetition names the default character set
  let charset = fields[17] ?? '';
  const r = charset.indexOf(delimiters.repetition);
  if (r !== -1) {
    charset = charset.slice(0, r);
  }
  const c = charset.indexOf(delimiters.component);
  if (c !== -1) {
    charset = charset.slice(0, c);
  }
  return { start, end, delimiters, fields, charset: charset.trim() };
}

function unsupported(name: string): Hl7ParseError {
  return new Hl7ParseError('UNSUPPORTED_CHARSET', `Unsupported character set '${name}' (MSH-18)`);
}

/** Choose the decoding for bytes whose MSH-18 says `charset` ('' = not valued). */
function chooseEncoding(
  charset: string,
  buf: Buffer | undefined,
  ascii: boolean,
  options?: ParseOptions,
): string {
  if (charset !== '') {
    const enc = resolveCharset(charset);
    if (enc === undefined) {
      throw unsupported(charset);
    }
    if (enc === 'ascii' && !ascii && buf !== undefined) {
      // declared ASCII but 8-bit bytes: decode them the way the sender most likely meant
      return bufferIsUtf8(buf) ? 'utf8' : WINDOWS_1252;
    }
    return enc;
  }
  const fallback = options?.defaultCharset ?? 'UTF-8';
  const enc = resolveCharset(fallback);
  if (enc === undefined) {
    throw unsupported(fallback);
  }
  if (enc === 'utf8' && !ascii && buf !== undefined && options?.defaultCharset === undefined) {
    return bufferIsUtf8(buf) ? 'utf8' : WINDOWS_1252;
  }
  return enc;
}

/**
 * Parse one HL7 v2 message from bytes (decoded with the charset named in MSH-18) or text.
 *
 * Separators come from MSH-1/MSH-2 (including the 2.7 truncation character). Segment
 * separators `\r`, `\n` and `\r\n` are accepted; empty and blank segments are skipped. The
 * message is lazy: only MSH is looked at here, other segments when they are read.
 *
 * Throws {@link Hl7ParseError}: EMPTY, NO_MSH, BAD_DELIMITERS, UNSUPPORTED_CHARSET.
 */
export function parseMessage(input: Buffer | string, options?: ParseOptions): Hl7Message {
  if (typeof input === 'string') {
    const h = readHeader(input, 0);
    const encoding = chooseEncoding(h.charset, undefined, true, options);
    return new Hl7Message({
      delimiters: h.delimiters,
      encoding,
      text: input,
      start: h.start,
      mshFields: h.fields,
    });
  }
  if (input.length === 0) {
    throw new Hl7ParseError('EMPTY', 'The message is empty');
  }
  const ascii = bufferIsAscii(input);
  // latin1 maps every byte to one char: delimiters and MSH-18 are found at their byte offsets
  const text0 = input.toString('latin1');
  const bom = input.length >= 3 && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf;
  const h = readHeader(text0, bom ? 3 : 0);
  const encoding = chooseEncoding(h.charset, input, ascii, options);
  if (ascii || encoding === 'latin1') {
    return new Hl7Message({
      delimiters: h.delimiters,
      encoding,
      text: text0,
      start: h.start,
      source: input,
      mshFields: h.fields,
    });
  }
  const text = decodeBytes(input, encoding);
  const start = skipLeading(text, 0);
  return new Hl7Message({
    delimiters: h.delimiters,
    encoding,
    text,
    start,
    source: input,
  });
}

export interface CreateMessageOptions {
  delimiters?: Partial<Delimiters>;
  /** MSH-12, default '2.5.1' */
  version?: string;
  /** MSH-9, components separated by '^' whatever the delimiters, e.g. 'ADT^A01^ADT_A01' */
  messageType?: string;
  /** MSH-10, default generated */
  controlId?: string;
  /** MSH-3..6; '^' separates components (HD: namespace^universal id^type) */
  sendingApplication?: string;
  sendingFacility?: string;
  receivingApplication?: string;
  receivingFacility?: string;
  /** MSH-11, default 'P' */
  processingId?: string;
  /** MSH-18 (e.g. 'UNICODE UTF-8', '8859/1'); also the encoding of toBuffer(). Default: none (UTF-8). */
  charset?: string;
  /** MSH-7, default now */
  timestamp?: Date;
  /**
   * Node/iconv encoding used by toBuffer() when it is not the one `charset` names (e.g. an ACK
   * that answers in the windows-1252 its original was decoded with, MSH-18 being empty).
   */
  encoding?: string;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The last second formatted (an ACK per message asks for the same second again and again). */
let lastSecond = NaN;
let lastFormatted = '';

/** HL7 DTM in local time with its UTC offset: YYYYMMDDHHMMSS+ZZZZ. */
export function formatHl7DateTime(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastSecond) {
    lastFormatted = formatSecond(d);
    lastSecond = second;
  }
  return lastFormatted;
}

function formatSecond(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}` +
    `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

let counter = 0;

/** A message control id: unique per process and time, at most 20 characters (ST in v2.3). */
export function generateControlId(): string {
  counter = (counter + 1) % 1_000_000;
  return `${Date.now().toString(36).toUpperCase()}${pad(counter, 6)}${Math.floor(
    Math.random() * 1296,
  )
    .toString(36)
    .toUpperCase()
    .padStart(2, '0')}`;
}

/** Escape each '^'-separated piece and join with the message's component separator. */
export function composite(value: string, d: Delimiters): string {
  return value
    .split('^')
    .map((v) => encodeEscapes(v, d))
    .join(d.component);
}

/** Start a new message with an MSH segment. Edit it with set()/addSegment(). */
export function createMessage(opts: CreateMessageOptions = {}): Hl7Message {
  const merged = { ...DEFAULT_DELIMITERS, ...opts.delimiters };
  const delimiters = delimitersFrom(merged.field, encodingCharacters(merged));
  let encoding = 'utf8';
  if (opts.charset !== undefined && opts.charset !== '') {
    const enc = resolveCharset(opts.charset);
    if (enc === undefined) {
      throw unsupported(opts.charset);
    }
    encoding = enc;
  }
  if (opts.encoding !== undefined) {
    encoding = opts.encoding;
  }
  const msg = new Hl7Message({ delimiters, encoding });
  const msh = msg.addSegment('MSH');
  const c = (v: string | undefined): string => composite(v ?? '', delimiters);
  msh.setRaw(3, c(opts.sendingApplication));
  msh.setRaw(4, c(opts.sendingFacility));
  msh.setRaw(5, c(opts.receivingApplication));
  msh.setRaw(6, c(opts.receivingFacility));
  msh.setRaw(7, formatHl7DateTime(opts.timestamp ?? new Date()));
  msh.setRaw(9, c(opts.messageType));
  msh.setRaw(10, encodeEscapes(opts.controlId ?? generateControlId(), delimiters));
  msh.setRaw(11, c(opts.processingId ?? 'P'));
  msh.setRaw(12, c(opts.version ?? '2.5.1'));
  if (opts.charset !== undefined && opts.charset !== '') {
    msh.setRaw(18, encodeEscapes(opts.charset, delimiters));
  }
  return msg;
}

/** Encode text in a message charset (MSH-18 name or encoding name); for senders. */
export function encodeForCharset(text: string, charset: string): Buffer {
  const enc = resolveCharset(charset);
  if (enc === undefined) {
    throw unsupported(charset);
  }
  return encodeText(text, enc);
}
