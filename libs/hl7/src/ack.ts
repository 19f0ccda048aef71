import { DEFAULT_DELIMITERS, encodingCharacters } from './delimiters';
import { encodeText } from './charset';
import { encodeEscapes } from './escape';
import { Hl7Message } from './message';
import { formatHl7DateTime, generateControlId } from './parse';
import { parsePath } from './path';

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

/** HL7 table 0357 (message error condition codes) with their texts. */
export const HL7_ERROR_CODES = {
  0: 'Message accepted',
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
} as const satisfies Record<number, string>;

export type Hl7ErrorCode = keyof typeof HL7_ERROR_CODES;

export interface AckError {
  /** HL7 table 0357, e.g. 100, 101, 200, 203, 207 */
  code: number;
  /** defaults to the table 0357 text of the code */
  text?: string;
  /** ERR-4 (2.5+), default 'E' */
  severity?: 'E' | 'W' | 'I' | 'F';
  /** e.g. 'PID-3', 'MSH-9', 'OBX(2)-5.1' */
  location?: string;
}

export interface AckOptions {
  code: AckCode;
  /** MSA-3 (where the version has it: before 2.7) */
  text?: string;
  error?: AckError;
  /** the ACK's own MSH-10; default generated */
  controlId?: string;
  now?: Date;
}

/** The version of a message as comparable numbers: '2.5.1' → [2, 5, 1]; '' → undefined. */
function versionParts(version: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (m === null) {
    return undefined;
  }
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** Is `version` at least major.minor? Unknown versions count as 2.5 (what we answer with). */
function atLeast(version: string, major: number, minor: number): boolean {
  const v = versionParts(version) ?? [2, 5, 0];
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

export function errorText(code: number): string | undefined {
  return (HL7_ERROR_CODES as Readonly<Record<number, string>>)[code];
}

interface Location {
  segment: string;
  sequence: string;
  field: string;
  repetition: string;
  component: string;
  subcomponent: string;
}

function parseLocation(location: string | undefined): Location | undefined {
  if (location === undefined || location === '') {
    return undefined;
  }
  try {
    const p = parsePath(location);
    return {
      segment: p.segment,
      sequence: String(p.occurrence),
      field: String(p.field),
      repetition: p.repetition === undefined ? '' : String(p.repetition),
      component: p.component === undefined ? '' : String(p.component),
      subcomponent: p.subcomponent === undefined ? '' : String(p.subcomponent),
    };
  } catch {
    // a bare segment name ('PID') is still a useful location
    return /^[A-Z0-9]{3}$/.test(location)
      ? {
          segment: location,
          sequence: '1',
          field: '',
          repetition: '',
          component: '',
          subcomponent: '',
        }
      : undefined;
  }
}

/**
 * Build an ACK for `original` (undefined when the original header could not be parsed: then a
 * generic v2.5 ACK with empty mirrored fields).
 *
 * - MSH-3/4 = original MSH-5/6, MSH-5/6 = original MSH-3/4 (copied whole, as on the wire);
 *   MSH-9 `ACK^<trigger>^ACK` (`ACK` when the original has no trigger event); MSH-11/12 and
 *   MSH-18 from the original; delimiters and charset of the original.
 * - MSA-1 code, MSA-2 original MSH-10, MSA-3 text (before 2.7, where MSA-3 still exists).
 * - ERR before 2.5: ERR-1 `segment^sequence^field^code&text&HL70357`.
 *   From 2.5: ERR-2 location (`segment^sequence^field^rep^comp^sub`),
 *   ERR-3 `code^text^HL70357`, ERR-4 severity (default E).
 */
export function buildAck(original: Hl7Message | undefined, options: AckOptions): Hl7Message {
  const { text, msh } = ackText(original, options);
  return new Hl7Message({
    delimiters: original?.delimiters ?? DEFAULT_DELIMITERS,
    // toBuffer() answers in the original's encoding (an 8859/1 sender gets an 8859/1 ACK).
    encoding: original?.encoding ?? 'utf8',
    text,
    start: 0,
    mshFields: msh,
  });
}

/**
 * The bytes of `buildAck(original, options).toBuffer()`, without building the message (the
 * gateway sends one per message it receives).
 */
export function buildAckBuffer(original: Hl7Message | undefined, options: AckOptions): Buffer {
  return encodeText(ackText(original, options).text, original?.encoding ?? 'utf8');
}

/**
 * The ACK as text, and its MSH split on the field separator. Built as strings: assembling it
 * through createMessage() and setRaw() cost five times the parse of the message it answers.
 */
function ackText(
  original: Hl7Message | undefined,
  options: AckOptions,
): { text: string; msh: string[] } {
  const delimiters = original?.delimiters ?? DEFAULT_DELIMITERS;
  const esc = (v: string): string => encodeEscapes(v, delimiters);
  const raw = (path: string): string => original?.getRaw(path) ?? '';
  const version = original?.version ?? '';
  const trigger = original?.triggerEvent ?? '';
  const charset = raw('MSH-18');
  const c = delimiters.component;

  // MSH fields from MSH-2 (MSH-1 is the separator joining them).
  const msh = [
    'MSH',
    encodingCharacters(delimiters),
    raw('MSH-5'),
    raw('MSH-6'),
    raw('MSH-3'),
    raw('MSH-4'),
    formatHl7DateTime(options.now ?? new Date()),
    '',
    trigger === '' ? 'ACK' : `ACK${c}${esc(trigger)}${c}ACK`,
    esc(options.controlId ?? generateControlId()),
    original === undefined ? 'P' : raw('MSH-11'),
    original === undefined ? '2.5' : raw('MSH-12'),
  ];
  if (charset !== '') {
    fieldAt(msh, 17, charset); // MSH-18
  }

  const msa = ['MSA', esc(options.code), esc(original?.controlId ?? '')];
  const hasMsa3 = !atLeast(version, 2, 7);
  if (options.text !== undefined && hasMsa3) {
    msa.push(esc(options.text));
  }
  const segments = [msh, msa];

  const err = options.error;
  if (err !== undefined) {
    const text = err.text ?? errorText(err.code) ?? '';
    const loc = parseLocation(err.location);
    const seg = ['ERR'];
    const s = delimiters.subcomponent;
    if (atLeast(version, 2, 5)) {
      if (loc !== undefined) {
        const parts = [
          loc.segment,
          loc.sequence,
          loc.field,
          loc.repetition,
          loc.component,
          loc.subcomponent,
        ];
        while (parts.length > 1 && parts[parts.length - 1] === '') {
          parts.pop();
        }
        fieldAt(seg, 2, parts.map(esc).join(c));
      }
      fieldAt(seg, 3, [String(err.code), esc(text), 'HL70357'].join(c));
      fieldAt(seg, 4, err.severity ?? 'E');
      if (options.text !== undefined && !hasMsa3) {
        fieldAt(seg, 8, esc(options.text)); // ERR-8 user message: where MSA-3 went in 2.7
      }
    } else {
      const code = [String(err.code), esc(text), 'HL70357'].join(s);
      const where = loc === undefined ? ['', '', ''] : [esc(loc.segment), loc.sequence, loc.field];
      fieldAt(seg, 1, [...where, code].join(c));
    }
    segments.push(seg);
  }

  let text = '';
  for (const seg of segments) {
    text += seg.join(delimiters.field) + '\r';
  }
  return { text, msh };
}

/** Set `fields[n]` (a segment split on the field separator), padding with empty fields. */
function fieldAt(fields: string[], n: number, value: string): void {
  while (fields.length < n) {
    fields.push('');
  }
  fields[n] = value;
}

/**
 * Which ACK code to send. Mode 'original' → AA/AE/AR; 'enhanced' → CA/CE/CR; 'auto' →
 * enhanced when MSH-15 or MSH-16 is valued, else original. In enhanced mode MSH-15 decides
 * whether to answer at all: AL (or empty) always, NE never, ER only on error/reject, SU only
 * on accept; null means no ACK is to be sent. With `honorAcceptAckType: false` an accept
 * ACK is always sent (many MLLP senders block until they get one, whatever MSH-15 says).
 */
export function chooseAckCode(
  original: Hl7Message | undefined,
  outcome: 'accept' | 'error' | 'reject',
  mode: 'auto' | 'original' | 'enhanced',
  options: { honorAcceptAckType?: boolean } = {},
): AckCode | null {
  const accept = original?.acceptAckType.trim().toUpperCase() ?? '';
  const app = original?.applicationAckType.trim() ?? '';
  const enhanced = mode === 'enhanced' || (mode === 'auto' && (accept !== '' || app !== ''));
  if (!enhanced) {
    switch (outcome) {
      case 'accept':
        return 'AA';
      case 'error':
        return 'AE';
      case 'reject':
        return 'AR';
    }
  }
  switch (options.honorAcceptAckType === false ? '' : accept) {
    case 'NE':
      return null;
    case 'ER':
      if (outcome === 'accept') {
        return null;
      }
      break;
    case 'SU':
      if (outcome !== 'accept') {
        return null;
      }
      break;
    default:
      break;
  }
  switch (outcome) {
    case 'accept':
      return 'CA';
    case 'error':
      return 'CE';
    case 'reject':
      return 'CR';
  }
}
