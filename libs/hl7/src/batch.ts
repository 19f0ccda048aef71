const CR = 0x0d;
const LF = 0x0a;

type LineKind = 'MSH' | 'ENVELOPE' | 'BLANK' | 'OTHER';

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Past the blanks (controls, space, DEL) from `i`, up to `end`. */
function skipBlanks(buf: Buffer, i: number, end: number): number {
  while (i < end && (buf[i] <= 0x20 || buf[i] === 0x7f)) {
    i++;
  }
  return i;
}

/** Past a UTF-8 byte order mark at `i` (the very start of a file), if there is one. */
function skipBom(buf: Buffer, i: number): number {
  return buf[i] === 0xef && buf[i + 1] === 0xbb && buf[i + 2] === 0xbf ? i + 3 : i;
}

function kindOf(buf: Buffer, start: number, end: number): LineKind {
  let i = skipBlanks(buf, start, end);
  if (i === end) {
    return 'BLANK';
  }
  i = skipBom(buf, i);
  if (end - i < 4 || isAlnum(buf[i + 3])) {
    return 'OTHER';
  }
  const name = buf.toString('latin1', i, i + 3);
  switch (name) {
    case 'MSH':
      return 'MSH';
    case 'FHS':
    case 'BHS':
    case 'BTS':
    case 'FTS':
      return 'ENVELOPE';
    default:
      return 'OTHER';
  }
}

/**
 * Split a file or buffer into message payloads: FHS/BHS/BTS/FTS batch envelopes dropped;
 * several MSH messages back to back, or separated by blank lines, split; a single message
 * returned as is (the same Buffer). Each returned Buffer is one message's bytes (a slice of
 * the input), from its MSH to the terminator of its last non-blank segment; blank lines inside
 * a message are kept. Input with no MSH at all is returned whole (the parser then reports it);
 * blank input gives [].
 */
export function splitMessages(input: Buffer): Buffer[] {
  const starts: number[] = [];
  const ends: number[] = [];
  let envelope = false;
  let current = -1; // start of the message being collected
  let lastEnd = -1; // end (after terminator) of its last non-blank segment
  let anyContent = false;
  const close = (): void => {
    if (current !== -1) {
      starts.push(current);
      ends.push(lastEnd);
      current = -1;
    }
  };
  const n = input.length;
  let pos = 0;
  while (pos < n) {
    let end = pos;
    while (end < n && input[end] !== CR && input[end] !== LF) {
      end++;
    }
    let next = end;
    if (next < n && input[next] === CR) {
      next++;
    }
    if (next < n && input[next] === LF && (next === end || input[end] === CR)) {
      next++;
    }
    const kind = kindOf(input, pos, end);
    switch (kind) {
      case 'MSH':
        close();
        current = pos;
        lastEnd = next;
        anyContent = true;
        break;
      case 'ENVELOPE':
        close();
        envelope = true;
        anyContent = true;
        break;
      case 'OTHER':
        anyContent = true;
        if (current !== -1) {
          lastEnd = next;
        }
        break;
      case 'BLANK':
        break;
    }
    pos = next;
  }
  close();
  if (starts.length === 0) {
    return anyContent ? [input] : [];
  }
  if (!envelope && starts.length === 1) {
    return [input];
  }
  return starts.map((s, i) => input.subarray(s, ends[i]));
}

/** Segment lines of the input (CR, LF or CRLF ends), as latin1 text (bytes kept one to one). */
function lines(input: Buffer): string[] {
  return input
    .toString('latin1')
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(/^[\s\u007f]*(?:\u00ef\u00bb\u00bf)?[\s\u007f]*/, ''))
    .filter((l) => l.length > 0);
}

/**
 * The header segments of a batch, raw. Field arrays use HL7 numbering: `fhs[3]` is FHS-3
 * (sending application), `fhs[11]` FHS-11 (file control id); index 1 is the field separator.
 */
export interface BatchHeader {
  fieldSeparator: string;
  encodingCharacters: string;
  fhs?: string[];
  bhs?: string[];
}

/**
 * Whether a payload is an HL7 batch: its first segment is FHS or BHS (after blank lines or a
 * UTF-8 byte order mark).
 */
export function isBatch(input: Buffer): boolean {
  // Cheap: it runs on every frame the gateway receives.
  const n = input.length;
  const i = skipBlanks(input, skipBom(input, skipBlanks(input, 0, n)), n);
  return (
    i + 3 < n &&
    (input[i] === 0x46 || input[i] === 0x42) && // F or B
    input[i + 1] === 0x48 && // H
    input[i + 2] === 0x53 && // S
    input[i + 3] > 0x20 &&
    !isAlnum(input[i + 3])
  );
}

/** The FHS and BHS segments before the batch's first message (undefined: neither). */
export function readBatchHeader(input: Buffer): BatchHeader | undefined {
  const header: Partial<BatchHeader> = {};
  for (const line of lines(input)) {
    const name = line.slice(0, 3);
    if (name !== 'FHS' && name !== 'BHS') {
      break;
    }
    const sep = line.charAt(3);
    if (sep === '' || /[A-Za-z0-9\s]/.test(sep)) {
      break;
    }
    const fields = [name, sep, ...line.slice(4).split(sep)];
    header.fieldSeparator ??= sep;
    header.encodingCharacters ??= fields[2] ?? '';
    if (name === 'FHS') {
      header.fhs = fields;
    } else {
      header.bhs = fields;
    }
  }
  if (header.fhs === undefined && header.bhs === undefined) {
    return undefined;
  }
  return header as BatchHeader;
}

export interface BatchAckOptions {
  /** Control id of the acknowledgement batch (BHS-11, FHS-11). */
  controlId: string;
  /** Its creation time (BHS-7, FHS-7), already formatted as an HL7 DTM. */
  timestamp: string;
}

/**
 * A batch acknowledgement (HL7 v2 chapter 2, batch protocol): the ACK of each message of the
 * batch, in order, between a BHS and a BTS (and an FHS and FTS when the batch came in a file).
 * The header mirrors the original: sending and receiving application and facility swapped,
 * BHS-12 / FHS-12 (reference control id) = the original BHS-11 / FHS-11; BTS-1 = the number of
 * ACKs, FTS-1 = 1 batch. Separators as in the original header (`|^~\&` when there is none).
 */
export function buildBatchAck(
  header: BatchHeader | undefined,
  acks: readonly Buffer[],
  options: BatchAckOptions,
): Buffer {
  const sep = header?.fieldSeparator ?? '|';
  const enc = header?.encodingCharacters || '^~\\&';
  const mirror = (name: 'FHS' | 'BHS', orig: string[] | undefined): string => {
    const f = (i: number): string => orig?.[i] ?? '';
    const fields = [
      enc,
      f(5),
      f(6),
      f(3),
      f(4),
      options.timestamp,
      '',
      '',
      '',
      options.controlId,
      f(11),
    ];
    while (fields.length > 1 && fields[fields.length - 1] === '') {
      fields.pop();
    }
    return `${name}${sep}${fields.join(sep)}\r`;
  };
  const parts: Buffer[] = [];
  const file = header?.fhs !== undefined;
  if (file) {
    parts.push(Buffer.from(mirror('FHS', header.fhs), 'latin1'));
  }
  parts.push(Buffer.from(mirror('BHS', header?.bhs ?? header?.fhs), 'latin1'));
  for (const ack of acks) {
    parts.push(ack);
    if (ack.length > 0 && ack[ack.length - 1] !== CR) {
      parts.push(Buffer.from('\r', 'latin1'));
    }
  }
  parts.push(Buffer.from(`BTS${sep}${acks.length}\r`, 'latin1'));
  if (file) {
    parts.push(Buffer.from(`FTS${sep}1\r`, 'latin1'));
  }
  return Buffer.concat(parts);
}
