/**
 * Renders what a source record says at one time as an HL7 v2.5.1 ADT message (A01, A04 or A08,
 * structure ADT_A01): MSH, EVN, PID, PV1, segments terminated by `\r`.
 *
 * Each authority writes in one of three house styles (by its position in the list), as real
 * senders differ: upper or mixed case names, abbreviated or spelled-out street types, the
 * apartment in XAD-2 or after the street, ZIP or ZIP+4, phones formatted, plain or split into
 * XTN components, SSN with or without dashes.
 */
import { DEFAULT_DELIMITERS, encodeEscapes } from '@engine/hl7';
import { CLINICS, STREET_TYPES, WARDS } from './data';
import { formatTimestamp } from './dates';
import { type Address, type Demographics } from './population';

export type Trigger = 'A01' | 'A04' | 'A08';

export interface RenderInput {
  authority: string;
  /** House style 0, 1 or 2. */
  style: number;
  mrn: string;
  trigger: Trigger;
  at: number;
  controlId: string;
  /** PV1-19 for A01/A04 (visit number); also varies the ward, room and clinic. */
  visit: number;
  demographics: Demographics;
}

const SPECIAL = /[|^~\\&\r\n]/;

/** Values come from our own lists, but escape anyway should one ever carry a delimiter. */
function esc(value: string): string {
  return SPECIAL.test(value) ? encodeEscapes(value, DEFAULT_DELIMITERS) : value;
}

function titleCase(value: string): string {
  return value.toLowerCase().replace(/(^|[ '-])([a-z])/g, (_, sep: string, ch: string) => {
    return sep + ch.toUpperCase();
  });
}

const APPLICATIONS = ['ADT', 'REG', 'PAS'];

function name(d: Demographics, style: number, caseOf: (s: string) => string): string {
  const type = style === 1 ? '' : '^^^L';
  let xpn =
    `${esc(caseOf(d.family))}^${esc(caseOf(d.given))}^${esc(caseOf(d.middle ?? ''))}` +
    `^${d.suffix ?? ''}${type}`;
  if (type === '') {
    xpn = xpn.replace(/\^+$/, '');
  }
  return xpn;
}

function address(a: Address, style: number, caseOf: (s: string) => string): string {
  const [abbreviation, word] = STREET_TYPES[a.streetType];
  const street =
    `${a.number} ${a.direction ? `${a.direction} ` : ''}${a.street} ` +
    (style === 1 ? word : abbreviation);
  let line1 = street;
  let line2 = '';
  if (a.unit !== undefined) {
    if (style === 2) {
      line1 = `${street} # ${a.unit}`;
    } else {
      line2 = `${style === 1 ? 'UNIT' : 'APT'} ${a.unit}`;
    }
  }
  const zip = style === 2 ? `${a.zip}-${a.zip4}` : a.zip;
  return [
    esc(caseOf(line1)),
    esc(caseOf(line2)),
    esc(caseOf(a.city.name)),
    a.city.state,
    zip,
    'USA',
    'H',
  ].join('^');
}

function phone(number: string, style: number): string {
  const area = number.slice(0, 3);
  const local = number.slice(3);
  switch (style) {
    case 0:
      return `(${area})${local.slice(0, 3)}-${local.slice(3)}^PRN^PH^^^${area}^${local}`;
    case 1:
      return `${area}-${local.slice(0, 3)}-${local.slice(3)}^PRN^PH`;
    default:
      return `^PRN^PH^^^${area}^${local}`;
  }
}

export function renderAdt(input: RenderInput): string {
  const { demographics: d, style, authority, trigger, visit } = input;
  const ts = formatTimestamp(input.at);
  const caseOf = style === 1 ? titleCase : (s: string): string => s;
  const auth = esc(authority);

  const pid: string[] = Array<string>(26).fill('');
  pid[0] = 'PID';
  pid[1] = '1';
  pid[3] = `${esc(input.mrn)}^^^${auth}^MR`;
  pid[5] = name(d, style, caseOf);
  if (d.maiden !== undefined && d.maidenIn === 'pid5') {
    pid[5] += `~${esc(caseOf(d.maiden))}^${esc(caseOf(d.given))}^^^^^M`;
  } else if (d.maiden !== undefined) {
    pid[6] = esc(caseOf(d.maiden));
  }
  pid[7] = d.birth;
  pid[8] = d.sex;
  if (d.address) {
    pid[11] = address(d.address, style, caseOf);
  }
  const telecom: string[] = [];
  if (d.phone !== undefined) {
    telecom.push(phone(d.phone, style));
  }
  if (d.email !== undefined) {
    telecom.push(`^NET^Internet^${esc(d.email)}`);
  }
  pid[13] = telecom.join('~');
  if (d.ssn !== undefined) {
    pid[19] = style === 0 ? `${d.ssn.slice(0, 3)}-${d.ssn.slice(3, 5)}-${d.ssn.slice(5)}` : d.ssn;
  }
  if (d.birthOrder !== undefined) {
    pid[24] = 'Y';
    pid[25] = String(d.birthOrder);
  }

  let pv1: string;
  if (trigger === 'A08') {
    pv1 = 'PV1|1|N';
  } else {
    const f: string[] = Array<string>(45).fill('');
    f[0] = 'PV1';
    f[1] = '1';
    if (trigger === 'A01') {
      f[2] = 'I';
      f[3] = `${WARDS[visit % WARDS.length]}^${100 + (visit % 400)}^${(visit % 2) + 1}^${auth}`;
      f[10] = 'MED';
    } else {
      f[2] = 'O';
      f[3] = `${CLINICS[visit % CLINICS.length]}^^^${auth}`;
    }
    f[19] = `V${String(visit).padStart(9, '0')}`;
    f[44] = ts;
    pv1 = f.join('|');
  }

  return (
    `MSH|^~\\&|${APPLICATIONS[style]}|${auth}|ENGINE|MPI|${ts}||ADT^${trigger}^ADT_A01|` +
    `${esc(input.controlId)}|P|2.5.1\r` +
    `EVN|${trigger}|${ts}\r` +
    `${pid.join('|').replace(/\|+$/, '')}\r` +
    `${pv1}\r`
  );
}
