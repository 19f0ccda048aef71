import { Hl7ParseError } from './errors';

/** The separators a message declares in MSH-1 and MSH-2. */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** HL7 2.7+: fifth character of MSH-2 (usually `#`). */
  truncation?: string;
}

export const DEFAULT_DELIMITERS: Readonly<Delimiters> = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
});

function isBadSeparator(ch: string): boolean {
  const c = ch.charCodeAt(0);
  // letters, digits, control characters (CR, LF, TAB...) and space cannot be separators
  return (
    c <= 0x20 ||
    c >= 0x7f ||
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a)
  );
}

/**
 * Build the delimiters from MSH-1 (`field`) and MSH-2 (`encoding`: component, repetition,
 * escape, subcomponent and, from 2.7, truncation). Throws BAD_DELIMITERS when they are not
 * usable (missing, duplicated, alphanumeric or whitespace).
 */
export function delimitersFrom(field: string, encoding: string): Delimiters {
  if (field.length !== 1 || isBadSeparator(field)) {
    throw new Hl7ParseError('BAD_DELIMITERS', 'MSH-1 (field separator) is missing or invalid');
  }
  if (encoding.length < 2 || encoding.length > 5) {
    throw new Hl7ParseError(
      'BAD_DELIMITERS',
      `MSH-2 (encoding characters) must have 4 or 5 characters, found ${encoding.length}`,
    );
  }
  const seen = new Set<string>([field]);
  for (const ch of encoding) {
    if (isBadSeparator(ch) || seen.has(ch)) {
      throw new Hl7ParseError('BAD_DELIMITERS', 'MSH-2 (encoding characters) is invalid');
    }
    seen.add(ch);
  }
  // Some senders send only 'MSH|^~\' or 'MSH|^~': missing characters take the standard value
  // when it does not clash with a declared one.
  const pick = (i: number, fallback: string): string => {
    const ch = encoding[i];
    if (ch !== undefined) {
      return ch;
    }
    if (seen.has(fallback)) {
      throw new Hl7ParseError('BAD_DELIMITERS', 'MSH-2 (encoding characters) is incomplete');
    }
    seen.add(fallback);
    return fallback;
  };
  const d: Delimiters = {
    field,
    component: pick(0, '^'),
    repetition: pick(1, '~'),
    escape: pick(2, '\\'),
    subcomponent: pick(3, '&'),
  };
  if (encoding.length === 5) {
    d.truncation = encoding[4];
  }
  return d;
}

/** The MSH-2 text for a set of delimiters. */
export function encodingCharacters(d: Delimiters): string {
  return d.component + d.repetition + d.escape + d.subcomponent + (d.truncation ?? '');
}
