import { DEFAULT_DELIMITERS } from './delimiters';
import { encodeEscapes } from './escape';
import { type Hl7Message } from './message';
import { createMessage } from './parse';
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
  const delimiters = original?.delimiters ?? DEFAULT_DELIMITERS;
  const raw = (path: string): string => original?.getRaw(path) ?? '';
  const version = original?.version ?? '';
  const trigger = original?.triggerEvent ?? '';
  const charset = original?.getRaw('MSH-18') ?? '';

  const ack = createMessage({
    delimiters,
    messageType: trigger === '' ? 'ACK' : `ACK^${trigger}^ACK`,
    controlId: options.controlId,
    timestamp: options.now,
    version: '2.5',
    encoding: original?.encoding,
  });
  const msh = ack.segment('MSH');
  if (msh === undefined) {
    throw new Error('createMessage() returned a message without MSH');
  }
  msh.setRaw(3, raw('MSH-5'));
  msh.setRaw(4, raw('MSH-6'));
  msh.setRaw(5, raw('MSH-3'));
  msh.setRaw(6, raw('MSH-4'));
  if (original !== undefined) {
    msh.setRaw(11, raw('MSH-11'));
    msh.setRaw(12, raw('MSH-12'));
  }
  if (charset !== '') {
    msh.setRaw(18, charset);
  }

  const msa = ack.addSegment('MSA');
  msa.set(1, options.code);
  msa.set(2, original?.controlId ?? '');
  const hasMsa3 = !atLeast(version, 2, 7);
  if (options.text !== undefined && hasMsa3) {
    msa.set(3, options.text);
  }

  const err = options.error;
  if (err !== undefined) {
    const text = err.text ?? errorText(err.code) ?? '';
    const loc = parseLocation(err.location);
    const seg = ack.addSegment('ERR');
    const c = delimiters.component;
    const s = delimiters.subcomponent;
    const esc = (v: string): string => encodeEscapes(v, delimiters);
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
        seg.setRaw(2, parts.map(esc).join(c));
      }
      seg.setRaw(3, [String(err.code), esc(text), 'HL70357'].join(c));
      seg.setRaw(4, err.severity ?? 'E');
      if (options.text !== undefined && !hasMsa3) {
        seg.setRaw(8, esc(options.text)); // ERR-8 user message: where MSA-3 went in 2.7
      }
    } else {
      const code = [String(err.code), esc(text), 'HL70357'].join(s);
      const where = loc === undefined ? ['', '', ''] : [esc(loc.segment), loc.sequence, loc.field];
      seg.setRaw(1, [...where, code].join(c));
    }
  }
  return ack;
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
