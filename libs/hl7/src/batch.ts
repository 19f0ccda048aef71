const CR = 0x0d;
const LF = 0x0a;

type LineKind = 'MSH' | 'ENVELOPE' | 'BLANK' | 'OTHER';

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function kindOf(buf: Buffer, start: number, end: number): LineKind {
  let i = start;
  while (i < end && (buf[i] <= 0x20 || buf[i] === 0x7f)) {
    i++;
  }
  if (i === end) {
    return 'BLANK';
  }
  // skip a UTF-8 BOM at the very start of a file
  if (buf[i] === 0xef && buf[i + 1] === 0xbb && buf[i + 2] === 0xbf) {
    i += 3;
  }
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
