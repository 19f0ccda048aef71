import { decodeBytes } from './charset';
import { type Delimiters } from './delimiters';

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;
/** Formatting / charset escapes that are KEPT verbatim in decoded values (HL7 2.7 §2.7.4-2.7.6). */
const FORMATTING =
  /^(?:[HN]|\.[a-z]{2}[+-]?\d*|Z[^\s]*|C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4}(?:[0-9A-Fa-f]{2})?)$/;

function hasDelimiter(body: string, d: Delimiters): boolean {
  return (
    body.includes(d.field) ||
    body.includes(d.component) ||
    body.includes(d.repetition) ||
    body.includes(d.subcomponent)
  );
}

/**
 * Decode one escape body (the text between two escape characters).
 * Returns the replacement, or `null` to keep `\body\` verbatim (formatting escapes), or
 * `undefined` when the sequence is invalid (the escape character is then literal).
 */
function decodeBody(body: string, d: Delimiters, encoding: string): string | null | undefined {
  if (body.length === 0 || hasDelimiter(body, d)) {
    return undefined;
  }
  if (body.length === 1) {
    switch (body) {
      case 'F':
        return d.field;
      case 'S':
        return d.component;
      case 'T':
        return d.subcomponent;
      case 'R':
        return d.repetition;
      case 'E':
        return d.escape;
      case 'P':
        return d.truncation;
      case 'H':
      case 'N':
        return null;
      default:
        return undefined;
    }
  }
  if (body.charCodeAt(0) === 0x58 /* X */) {
    const hex = body.slice(1);
    return HEX.test(hex) ? decodeBytes(Buffer.from(hex, 'hex'), encoding) : undefined;
  }
  return FORMATTING.test(body) ? null : undefined;
}

/**
 * Decode HL7 escape sequences in one value. `\F\ \S\ \T\ \R\ \E\` (and `\P\` when a truncation
 * character is declared) become the delimiter; `\Xhh..\` becomes the bytes decoded in the
 * message's encoding; formatting escapes (`\.br\`, `\H\`, `\N\`, `\Zxx\`, `\Cxxyy\`,
 * `\Mxxyyzz\`...) are kept as they are; anything else (including an escape character with no
 * closing one, or a sequence spanning a delimiter) is kept literally. Never throws.
 */
export function decodeEscapes(value: string, d: Delimiters, encoding: string): string {
  const esc = d.escape;
  let i = value.indexOf(esc);
  if (i === -1) {
    return value;
  }
  let out = '';
  let last = 0;
  while (i !== -1) {
    const close = value.indexOf(esc, i + 1);
    if (close === -1) {
      break;
    }
    const rep = decodeBody(value.slice(i + 1, close), d, encoding);
    if (rep === undefined) {
      // invalid: this escape char is literal; the closing one may open a valid sequence
      i = close;
      continue;
    }
    if (rep !== null) {
      out += value.slice(last, i) + rep;
      last = close + 1;
    }
    i = value.indexOf(esc, close + 1);
  }
  return last === 0 ? value : out + value.slice(last);
}

function formattingEscapeEnd(value: string, start: number, esc: string): number {
  const close = value.indexOf(esc, start + 1);
  if (close === -1) {
    return -1;
  }
  return FORMATTING.test(value.slice(start + 1, close)) ? close : -1;
}

/**
 * Escape a value for writing: delimiters become `\F\ \S\ \T\ \R\ \E\` (`\P\` for the truncation
 * character), CR and LF become `\X0D\` / `\X0A\`. Formatting escapes that {@link decodeEscapes}
 * keeps (`\.br\`, `\H\`...) are written through unchanged, so get → set round trips.
 */
export function encodeEscapes(value: string, d: Delimiters): string {
  let out = '';
  let last = 0;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const ch = value[i];
    let rep: string;
    if (ch === d.escape) {
      const end = formattingEscapeEnd(value, i, d.escape);
      if (end !== -1) {
        i = end;
        continue;
      }
      rep = 'E';
    } else if (ch === d.field) {
      rep = 'F';
    } else if (ch === d.component) {
      rep = 'S';
    } else if (ch === d.subcomponent) {
      rep = 'T';
    } else if (ch === d.repetition) {
      rep = 'R';
    } else if (ch === d.truncation) {
      rep = 'P';
    } else if (ch === '\r') {
      rep = 'X0D';
    } else if (ch === '\n') {
      rep = 'X0A';
    } else {
      continue;
    }
    out += value.slice(last, i) + d.escape + rep + d.escape;
    last = i + 1;
  }
  return last === 0 ? value : out + value.slice(last);
}
