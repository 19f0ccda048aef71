import { createHash } from 'node:crypto';
import {
  type Delimiters,
  type Hl7Message,
  type Hl7Segment,
  Hl7ParseError,
  createMessage,
  encodeEscapes,
  encodeForCharset,
  parseMessage,
} from '@engine/hl7';
import type {
  Address,
  DateValue,
  GoldenRecord,
  MultipleBirth,
  PersonName,
  Telecom,
} from '@engine/mpi';
import type { RenderInput, RenderOptions, Rendered, SourceEvent, SourceMessage } from '../types';
import { TransformError, applyRules } from './rules';

/**
 * HL7 v2 rendering of deliveries.
 *
 * - Message deliveries re-emit the message received: the EUID is added as the last PID-3
 *   repetition (`<euid>^^^<authority>^PI`) of the first PID, field rules are applied, and the
 *   message is encoded in the charset it was received in. A message nothing changed is sent
 *   byte for byte as received.
 * - Event deliveries build a message from an MPI event: patient.merged → ADT^A40, linked →
 *   A24, unlinked → A37, created → A28, updated → A31 (docs/events.md). Other event types have
 *   no HL7 form: `renderHl7` returns null.
 */

export const HL7_CONTENT_TYPE = 'application/hl7-v2';

/** Version of the messages the engine builds. */
const EVENT_VERSION = '2.5.1';
/** Charset of built messages (MSH-18): names may hold any character. */
const EVENT_CHARSET = 'UNICODE UTF-8';

export function renderHl7(input: RenderInput, opts: RenderOptions): Rendered | null {
  switch (input.kind) {
    case 'message': {
      if (input.message === undefined) {
        throw new TransformError('BAD_INPUT', `delivery ${input.deliveryId} has no message`);
      }
      return renderMessage(input.message, input.euid, opts);
    }
    case 'event': {
      if (input.event === undefined) {
        throw new TransformError('BAD_INPUT', `delivery ${input.deliveryId} has no event`);
      }
      const msg = buildEventMessage(input.event, input.deliveryId, opts);
      if (msg === null) {
        return null;
      }
      const charset = msg.characterSet;
      applyRules(msg, opts.rules, opts.tables);
      return encode(msg, charset);
    }
  }
}

function renderMessage(source: SourceMessage, euid: string | null, opts: RenderOptions): Rendered {
  const msg = parseStored(source);
  const charset = msg.characterSet;
  if (opts.addEuid && euid !== null && euid !== '') {
    addEuid(msg, euid, opts.euidAuthority);
  }
  applyRules(msg, opts.rules, opts.tables);
  return encode(msg, charset);
}

/**
 * Parses a stored message the way it was parsed when received (MSH-18, else the feed's
 * default charset). Throws TransformError `BAD_INPUT` when it does not parse.
 */
export function parseStored(source: SourceMessage): Hl7Message {
  try {
    return parseMessage(
      source.raw,
      source.defaultCharset === undefined ? undefined : { defaultCharset: source.defaultCharset },
    );
  } catch (err) {
    if (err instanceof Hl7ParseError) {
      throw new TransformError('BAD_INPUT', `message ${source.id} does not parse (${err.code})`, {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * The message's bytes: the bytes received when nothing changed, else encoded in the charset
 * received; a rule that changed MSH-18 transcodes to the charset it names.
 */
function encode(msg: Hl7Message, charsetBefore: string): Rendered {
  const charset = msg.characterSet;
  let body: Buffer;
  if (charset !== charsetBefore && charset !== '') {
    try {
      body = encodeForCharset(msg.toString(), charset);
    } catch (err) {
      if (err instanceof Hl7ParseError) {
        throw new TransformError('BAD_RULE', `MSH-18 set to an unknown charset`, { cause: err });
      }
      throw err;
    }
  } else {
    body = msg.toBuffer();
  }
  return { body, contentType: HL7_CONTENT_TYPE, extension: 'hl7', controlId: msg.controlId };
}

/** CX text `<value>^^^<authority>^<type>` escaped for the message's separators. */
function cx(d: Delimiters, value: string, authority: string, type: string): string {
  return components(d, [value, '', '', authority, type]);
}

/** Escapes each component and joins them, without trailing empty components. */
function components(d: Delimiters, values: ReadonlyArray<string | undefined>): string {
  const out = values.map((v) => (v === undefined ? '' : encodeEscapes(v, d)));
  while (out.length > 0 && out[out.length - 1] === '') {
    out.pop();
  }
  return out.join(d.component);
}

/**
 * Adds `<euid>^^^<authority>^PI` as the last repetition of PID-3 of the first PID (the first
 * identifier, the sender's MRN, stays first). Nothing is added when the message has no PID
 * or already carries that EUID under that authority. Returns whether the message changed.
 */
export function addEuid(msg: Hl7Message, euid: string, authority: string): boolean {
  const pid = msg.segment('PID');
  if (pid === undefined) {
    return false;
  }
  const field = pid.rawField(3);
  const count =
    field === undefined || field === '' ? 0 : field.split(msg.delimiters.repetition).length;
  for (let r = 1; r <= count; r++) {
    if (pid.get(`3[${r}].1`) === euid && (pid.get(`3[${r}].4.1`) ?? '') === authority) {
      return false;
    }
  }
  pid.setRaw(`3[${count + 1}]`, cx(msg.delimiters, euid, authority, 'PI'));
  return true;
}

// ---- messages built from MPI events ---------------------------------------------------

interface RecordRef {
  authority: string;
  mrn: string;
}

interface EventShape {
  /** MSH-9 */
  messageType: string;
  /** EVN-1 */
  trigger: string;
  /** PV1 `|1|N` after the PIDs (required by ADT_A05). */
  pv1: boolean;
}

const EVENT_MESSAGES: Readonly<Record<string, EventShape>> = {
  'patient.merged': { messageType: 'ADT^A40^ADT_A39', trigger: 'A40', pv1: false },
  'patient.linked': { messageType: 'ADT^A24^ADT_A24', trigger: 'A24', pv1: false },
  'patient.unlinked': { messageType: 'ADT^A37^ADT_A37', trigger: 'A37', pv1: false },
  'patient.created': { messageType: 'ADT^A28^ADT_A05', trigger: 'A28', pv1: true },
  'patient.updated': { messageType: 'ADT^A31^ADT_A05', trigger: 'A31', pv1: true },
};

/** MSH-10 of a built message: `EVT<delivery id>`, or a hash of it when that is too long. */
export function eventControlId(deliveryId: string): string {
  const direct = `EVT${deliveryId}`;
  if (direct.length <= 20 && /^[A-Za-z0-9]+$/.test(deliveryId)) {
    return direct;
  }
  const hash = createHash('sha256').update(deliveryId, 'utf8').digest('hex');
  return `EVT${hash.slice(0, 17).toUpperCase()}`;
}

/** HL7 DTM in UTC (`YYYYMMDDHHMMSS+0000`): the same bytes whatever the process time zone. */
export function formatHl7Utc(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace(/[-:T]/g, '')}+0000`;
}

/** A normalized date (`1962-03-05`, `2012-07-17T15:25:09.746+01:00`) as HL7 DTM. */
export function dateValueToHl7(value: string): string | undefined {
  const m =
    /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2}(?:\.\d{1,4})?))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(
      value,
    );
  if (m === null) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, tz] = m;
  const offset = tz === undefined ? '' : tz === 'Z' ? '+0000' : tz.replace(':', '');
  return `${y}${mo ?? ''}${d ?? ''}${h ?? ''}${mi ?? ''}${s ?? ''}${offset}`;
}

/**
 * The HL7 message for an MPI event, or null for event types without one. MSH-7 and EVN-2 are
 * the event time, MSH-10 comes from the delivery id: the same event renders the same bytes
 * on every attempt.
 */
export function buildEventMessage(
  event: SourceEvent,
  deliveryId: string,
  opts: Pick<RenderOptions, 'euidAuthority' | 'application' | 'facility'>,
): Hl7Message | null {
  const shape = Object.hasOwn(EVENT_MESSAGES, event.type) ? EVENT_MESSAGES[event.type] : undefined;
  if (shape === undefined) {
    return null;
  }
  const time = formatHl7Utc(event.createdAt);
  const msg = createMessage({
    messageType: shape.messageType,
    version: EVENT_VERSION,
    controlId: eventControlId(deliveryId),
    sendingApplication: opts.application,
    sendingFacility: opts.facility,
    charset: EVENT_CHARSET,
    timestamp: event.createdAt,
  });
  msg.setRaw('MSH-7', time);
  const evn = msg.addSegment('EVN');
  evn.setRaw(1, shape.trigger);
  evn.setRaw(2, time);

  const d = msg.delimiters;
  const auth = opts.euidAuthority;
  const p = event.payload;
  const euid = str(p.euid) ?? event.euid;
  const golden = goldenOf(p.golden);
  const mrns = (refs: RecordRef[]): string[] => refs.map((r) => cx(d, r.mrn, r.authority, 'MR'));
  const withEuid = (refs: RecordRef[], id: string | undefined): string[] =>
    id === undefined ? mrns(refs) : [...mrns(refs), cx(d, id, auth, 'PI')];

  switch (event.type) {
    case 'patient.merged': {
      // from a message: survivor/retired records; from a decision: persons (retiredEuid)
      const survivor = recordRef(p.survivor);
      const retired = recordRef(p.retired);
      const retiredEuid = str(p.retiredEuid);
      addPid(msg, 1, withEuid(survivor ? [survivor] : [], euid), golden);
      const prior = withEuid(retired ? [retired] : [], retiredEuid);
      if (prior.length === 0) {
        throw new TransformError(
          'BAD_INPUT',
          `patient.merged event ${event.key} names no retired identifier`,
        );
      }
      msg.addSegment('MRG').setRaw(1, prior.join(d.repetition));
      break;
    }
    case 'patient.linked': {
      // from a message: records [survivor's, linked]; from a decision: the linked record
      const records = recordRefs(p.records);
      const linked = records[1] ?? recordRef(p.record);
      addPid(msg, 1, withEuid(records.slice(0, 1), euid), golden);
      addPid(msg, 2, withEuid(linked ? [linked] : [], str(p.linkedEuid)), undefined);
      break;
    }
    case 'patient.unlinked': {
      const records = recordRefs(p.records);
      addPid(msg, 1, withEuid(records.slice(0, 1), euid), golden);
      addPid(msg, 2, withEuid(records.slice(1, 2), str(p.unlinkedEuid)), undefined);
      break;
    }
    case 'patient.created':
    case 'patient.updated':
      addPid(msg, 1, withEuid(recordRefs(p.records), euid), golden);
      break;
    default:
      return null;
  }
  if (shape.pv1) {
    const pv1 = msg.addSegment('PV1');
    pv1.setRaw(1, '1');
    pv1.setRaw(2, 'N');
  }
  return msg;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{authority, mrn}` of a payload; undefined without an MRN. */
function recordRef(v: unknown): RecordRef | undefined {
  if (!isObject(v)) {
    return undefined;
  }
  const mrn = str(v.mrn);
  return mrn === undefined ? undefined : { authority: str(v.authority) ?? '', mrn };
}

function recordRefs(v: unknown): RecordRef[] {
  if (!Array.isArray(v)) {
    return [];
  }
  return v.map(recordRef).filter((r): r is RecordRef => r !== undefined);
}

/** The golden record of a payload (JSON written by libs/mpi); undefined when absent. */
function goldenOf(v: unknown): GoldenRecord | undefined {
  return isObject(v) ? v : undefined;
}

// ---- PID from the golden record -------------------------------------------------------

/**
 * PID-3 identifiers plus the golden demographics: PID-5 name, 6 mother's maiden name, 7 birth
 * date, 8 sex, 10 race, 11 address, 13/14 phones and e-mail, 15 language, 16 marital status,
 * 22 ethnicity, 24/25 multiple birth, 29/30 death. The SSN is not sent (PID-19 stays empty).
 */
function addPid(
  msg: Hl7Message,
  setId: number,
  identifiers: string[],
  golden: GoldenRecord | undefined,
): Hl7Segment {
  const d = msg.delimiters;
  const pid = msg.addSegment('PID');
  pid.setRaw(1, String(setId));
  pid.setRaw(3, identifiers.join(d.repetition));
  if (golden === undefined) {
    return pid;
  }
  const put = (field: number, raw: string | undefined): void => {
    if (raw !== undefined && raw !== '') {
      pid.setRaw(field, raw);
    }
  };
  const codes = (v: unknown): string | undefined =>
    Array.isArray(v)
      ? v
          .map(str)
          .filter((c): c is string => c !== undefined)
          .map((c) => encodeEscapes(c, d))
          .join(d.repetition)
      : undefined;
  const code = (v: unknown): string | undefined => {
    const s = str(v);
    return s === undefined ? undefined : encodeEscapes(s, d);
  };
  put(5, golden.name ? xpn(d, golden.name) : undefined);
  put(6, golden.mothersMaidenName ? xpn(d, golden.mothersMaidenName) : undefined);
  put(7, hl7Date(golden.birthDate));
  put(8, code(golden.sex));
  put(10, codes(golden.race));
  put(11, golden.address ? xad(d, golden.address) : undefined);
  const telecom = Array.isArray(golden.telecom) ? golden.telecom : [];
  put(
    13,
    xtns(
      d,
      telecom.filter((t) => t.use !== 'work'),
    ),
  );
  put(
    14,
    xtns(
      d,
      telecom.filter((t) => t.use === 'work'),
    ),
  );
  put(15, code(golden.language));
  put(16, code(golden.maritalStatus));
  put(22, codes(golden.ethnicity));
  const mb: MultipleBirth | undefined = golden.multipleBirth;
  if (mb?.indicator !== undefined) {
    put(24, mb.indicator ? 'Y' : 'N');
  }
  if (typeof mb?.order === 'number') {
    put(25, String(mb.order));
  }
  const deceased = golden.deceased;
  if (deceased) {
    put(29, hl7Date(deceased.date ?? undefined));
    if (deceased.indicator !== undefined) {
      put(30, deceased.indicator ? 'Y' : 'N');
    }
  }
  return pid;
}

function hl7Date(v: DateValue | undefined): string | undefined {
  return v !== undefined && typeof v.value === 'string' ? dateValueToHl7(v.value) : undefined;
}

/** XPN: family^given^middle^suffix^prefix^^type. */
function xpn(d: Delimiters, n: PersonName): string {
  return components(d, [n.family, n.given, n.middle, n.suffix, n.prefix, '', n.type]);
}

/** XAD: line1^line2^city^state^zip^country^type^^county. */
function xad(d: Delimiters, a: Address): string {
  return components(d, [
    a.line1,
    a.line2,
    a.city,
    a.state,
    a.postalCode,
    a.country,
    a.type,
    '',
    a.county,
  ]);
}

const USE_CODES: Readonly<Record<Telecom['use'], string>> = {
  home: 'PRN',
  work: 'WPN',
  mobile: 'PRN',
  emergency: 'EMR',
  other: 'ORN',
};

/** XTN repetitions: phones `number^use^PH|CP|FX^^^^^ext`, e-mail `^NET^Internet^address`. */
function xtns(d: Delimiters, telecom: readonly Telecom[]): string {
  return telecom
    .filter((t) => typeof t.value === 'string' && t.value !== '')
    .map((t) => {
      if (t.system === 'email') {
        return components(d, ['', 'NET', 'Internet', t.value]);
      }
      const equipment = t.system === 'fax' ? 'FX' : t.use === 'mobile' ? 'CP' : 'PH';
      return components(d, [
        t.value,
        USE_CODES[t.use] ?? 'ORN',
        equipment,
        '',
        '',
        '',
        '',
        t.extension,
      ]);
    })
    .join(d.repetition);
}
