/**
 * FHIR R4 rendering of a delivery (`application/fhir+json`): one Bundle of type `message`,
 * MessageHeader first, as the HL7 V2-to-FHIR IG does for a v2 message. The mapping, its
 * choices and what is left out are in docs/fhir-mapping.md.
 *
 * Rendering is deterministic: the same input gives the same bytes. Resource ids and
 * `urn:uuid:` fullUrls are name-based UUIDs (SHA-256 of the delivery id and a key such as
 * `Patient/1` or `Observation/2.3`); timestamps come from the message or the event, never from
 * the clock. Values that would make invalid FHIR (bad dates, empty strings, times without a
 * known offset) are omitted or reduced rather than emitted.
 */
import { createHash } from 'node:crypto';
import type {
  Address as FhirAddress,
  Bundle,
  BundleEntry,
  CodeableConcept,
  ContactPoint,
  DiagnosticReport,
  Encounter as FhirEncounter,
  EncounterLocation,
  EncounterParticipant,
  Extension,
  FhirResource,
  HumanName,
  Identifier as FhirIdentifier,
  MessageHeader,
  Observation,
  ObservationReferenceRange,
  Patient,
  PatientLink,
  Period,
  Quantity,
  Reference,
} from 'fhir/r4';
import { type Hl7Segment, parseMessage } from '@engine/hl7';
import {
  type Address,
  type DateValue,
  type Deceased,
  type GoldenRecord,
  type Location,
  type MultipleBirth,
  type PersonName,
  type Practitioner,
  type Telecom,
  encounterFromPv1,
  groupSegments,
  isExplicitNull,
  type OrderGrouping,
  parseHl7Date,
  parseNumber,
  patientFromPid,
  tidyText,
} from '@engine/mpi';
import type { RenderInput, RenderOptions, Rendered } from '../types';

export const FHIR_CONTENT_TYPE = 'application/fhir+json';

/**
 * Name of an optional lookup table (config `tables:`) from assigning authority (CX-4.1, else
 * CX-4.2; `mpi.euidAuthority` for EUIDs) to identifier system URI, e.g.
 * `{ MRENTR: 'urn:oid:1.2.3.4' }`. Authorities without an entry get a derived system.
 */
export const IDENTIFIER_SYSTEMS_TABLE = 'fhir-identifier-systems';

// ---- code systems -------------------------------------------------------------------------

const v2Table = (table: string): string => `http://terminology.hl7.org/CodeSystem/v2-${table}`;
const V2_0203 = v2Table('0203');
const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const V3_NULL_FLAVOR = 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor';
const V3_INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
const V3_MARITAL = 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus';
const V3_PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const DATA_ABSENT = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';
const UCUM = 'http://unitsofmeasure.org';
const US_SSN = 'http://hl7.org/fhir/sid/us-ssn';
const BCP47 = 'urn:ietf:bcp:47';
const EXT_BIRTH_TIME = 'http://hl7.org/fhir/StructureDefinition/patient-birthTime';
const EXT_MOTHERS_MAIDEN_NAME = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';
/** MessageHeader.eventCoding system of MPI events (`patient.merged`, …). */
export const ENGINE_EVENT_SYSTEM = 'urn:engine:event-type';
/** Bundle.identifier system: the value is the delivery id (the same on every attempt). */
export const DELIVERY_SYSTEM = 'urn:engine:delivery';

/** v2 coding-system names (CWE-3/6) → FHIR system URIs. */
const CODING_SYSTEMS: Readonly<Record<string, string>> = {
  LN: 'http://loinc.org',
  LOINC: 'http://loinc.org',
  SCT: 'http://snomed.info/sct',
  SNOMEDCT: 'http://snomed.info/sct',
  UCUM,
  I10: 'http://hl7.org/fhir/sid/icd-10',
  I10C: 'http://hl7.org/fhir/sid/icd-10-cm',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  I9CDX: 'http://hl7.org/fhir/sid/icd-9-cm',
  I9CM: 'http://hl7.org/fhir/sid/icd-9-cm',
  CVX: 'http://hl7.org/fhir/sid/cvx',
  NDC: 'http://hl7.org/fhir/sid/ndc',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  C4: 'http://www.ama-assn.org/go/cpt',
  CPT: 'http://www.ama-assn.org/go/cpt',
  NULLFL: V3_NULL_FLAVOR,
};

/** Identifier type codes (CX-5) emitted as v2-0203 codings; others go to `type.text`. */
// prettier-ignore
const V2_0203_CODES = new Set([
  'AN', 'ANON', 'BR', 'BRN', 'DL', 'DN', 'DR', 'EI', 'EN', 'FILL', 'HC', 'JHN', 'LR', 'MA', 'MC',
  'MCN', 'MD', 'MR', 'NH', 'NI', 'NIIP', 'NPI', 'PCN', 'PEN', 'PI', 'PLAC', 'PN', 'PPN', 'PRN',
  'PT', 'RI', 'RRI', 'SB', 'SN', 'SR', 'SS', 'TAX', 'U', 'UDI', 'VN', 'VS', 'WC', 'XX',
]);

/** v2-0078 abnormal flags that are also v3 ObservationInterpretation codes (same spelling). */
// prettier-ignore
const V3_INTERPRETATION_CODES = new Set([
  '<', '>', 'A', 'AA', 'AC', 'B', 'CAR', 'Carrier', 'D', 'DET', 'E', 'EX', 'EXP', 'H', 'H>', 'HH',
  'HM', 'HU', 'HX', 'I', 'IE', 'IND', 'L', 'L<', 'LL', 'LU', 'LX', 'MS', 'N', 'NCL', 'ND', 'NEG',
  'NR', 'NS', 'OBX', 'POS', 'QCF', 'R', 'RR', 'S', 'SDD', 'SYN-R', 'SYN-S', 'TOX', 'U', 'UNE',
  'VS', 'W', 'WR',
]);

/** Units taken as UCUM when OBX-6 names no coding system (case-sensitive, as UCUM is). */
// prettier-ignore
const COMMON_UCUM = new Set([
  '%', '/min', '10*3/uL', '10*6/uL', '[IU]/L', 'Cel', 'U/L', 'cm', 'd', 'fL', 'g', 'g/L', 'g/dL',
  'g/dl', 'h', 'kg', 'kg/m2', 'L', 'm', 'mEq/L', 'meq/L', 'mg', 'mg/L', 'mg/dL', 'mg/dl', 'min',
  'mL', 'mL/min', 'mm', 'mm[Hg]', 'mmol/L', 'mmol/l', 'mo', 'ng/mL', 'nmol/L', 'pg', 'pg/mL',
  'pmol/L', 's', 'ug/L', 'ug/dL', 'ug/mL', 'umol/L', 'wk',
]);

/** PID-8 (table 0001) → administrative-gender, per the IG's table map (A and N → other). */
const GENDER: Readonly<Record<string, NonNullable<Patient['gender']>>> = {
  F: 'female',
  M: 'male',
  O: 'other',
  A: 'other',
  N: 'other',
  X: 'other',
  U: 'unknown',
};

/** XPN-7 (table 0200) → NameUse. Alias maps to nickname (v3 P "Other/Pseudonym/Alias"). */
const NAME_USE: Readonly<Record<string, NonNullable<HumanName['use']>>> = {
  L: 'official',
  R: 'official',
  D: 'usual',
  M: 'maiden',
  N: 'nickname',
  A: 'nickname',
  S: 'anonymous',
  TEMP: 'temp',
  BAD: 'old',
};

/** XAD-7 (table 0190) → Address.use / Address.type. */
const ADDRESS_KIND: Readonly<Record<string, Pick<FhirAddress, 'use' | 'type'>>> = {
  H: { use: 'home' },
  P: { use: 'home' },
  B: { use: 'work' },
  O: { use: 'work' },
  C: { use: 'temp' },
  BA: { use: 'old' },
  M: { type: 'postal' },
};

/** PID-16 (table 0002) → v3 MaritalStatus (or a NullFlavor). */
const MARITAL: Readonly<Record<string, { system: string; code: string }>> = {
  A: { system: V3_MARITAL, code: 'L' },
  B: { system: V3_MARITAL, code: 'U' },
  C: { system: V3_MARITAL, code: 'T' },
  D: { system: V3_MARITAL, code: 'D' },
  E: { system: V3_MARITAL, code: 'L' },
  G: { system: V3_MARITAL, code: 'T' },
  I: { system: V3_MARITAL, code: 'I' },
  M: { system: V3_MARITAL, code: 'M' },
  N: { system: V3_MARITAL, code: 'A' },
  P: { system: V3_MARITAL, code: 'T' },
  R: { system: V3_MARITAL, code: 'T' },
  S: { system: V3_MARITAL, code: 'S' },
  W: { system: V3_MARITAL, code: 'W' },
  O: { system: V3_NULL_FLAVOR, code: 'OTH' },
  T: { system: V3_NULL_FLAVOR, code: 'UNK' },
  U: { system: V3_NULL_FLAVOR, code: 'UNK' },
};

/** PV1-2 (table 0004) → v3 ActCode encounter class. */
const ENCOUNTER_CLASS: Readonly<Record<string, string>> = {
  E: 'EMER',
  I: 'IMP',
  O: 'AMB',
  P: 'PRENC',
  R: 'AMB',
};

/**
 * Trigger event (table 0003) → Encounter.status: the V2-to-FHIR IG's ConceptMap
 * table-hl70003-to-encounter-status (A01/A02/A13 in-progress, A03 finished, A04/A05 planned,
 * A11 cancelled), extended to the other visit events.
 */
const ENCOUNTER_STATUS: Readonly<Record<string, FhirEncounter['status']>> = {
  A01: 'in-progress',
  A02: 'in-progress',
  A04: 'planned',
  A06: 'in-progress',
  A07: 'in-progress',
  A12: 'in-progress',
  A13: 'in-progress',
  A15: 'in-progress',
  A16: 'in-progress',
  A22: 'in-progress',
  A25: 'in-progress',
  A26: 'in-progress',
  A03: 'finished',
  A05: 'planned',
  A14: 'planned',
  A11: 'cancelled',
  A27: 'cancelled',
  A38: 'cancelled',
  A21: 'onleave',
};

/** OBX-11 (table 0085) → Observation.status. */
const OBSERVATION_STATUS: Readonly<Record<string, Observation['status']>> = {
  F: 'final',
  U: 'final',
  C: 'corrected',
  A: 'amended',
  P: 'preliminary',
  R: 'preliminary',
  S: 'preliminary',
  I: 'registered',
  O: 'registered',
  X: 'cancelled',
  N: 'cancelled',
  D: 'entered-in-error',
  W: 'entered-in-error',
};

/** OBR-25 (table 0123) → DiagnosticReport.status. */
const REPORT_STATUS: Readonly<Record<string, DiagnosticReport['status']>> = {
  F: 'final',
  C: 'corrected',
  P: 'preliminary',
  R: 'preliminary',
  A: 'partial',
  X: 'cancelled',
  I: 'registered',
  O: 'registered',
  S: 'registered',
};

/** Triggers whose MRG-1 patient is replaced by the PID patient (merges and re-keys). */
const MERGE_TRIGGERS = new Set(['A18', 'A30', 'A34', 'A36', 'A39', 'A40', 'A46', 'A47']);
/** Message types whose OBR/OBX become DiagnosticReport/Observation resources. */
const RESULT_TYPES = new Set(['ORU', 'OUL']);
/** Message types whose OBX segments become Observations. */
const OBSERVATION_TYPES = new Set(['ORU', 'OUL', 'ADT']);

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const URI = /^(https?:\/\/|urn:)\S+$/i;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

const UNKNOWN_CODE: CodeableConcept = {
  coding: [{ system: DATA_ABSENT, code: 'unknown' }],
  text: 'Unknown',
};

// ---- public API ---------------------------------------------------------------------------

/** Renders a delivery as a FHIR R4 message Bundle; null when there is nothing to say in FHIR. */
export function renderFhir(input: RenderInput, opts: RenderOptions): Rendered | null {
  const bundle = fhirBundle(input, opts);
  if (bundle === null) {
    return null;
  }
  return {
    body: Buffer.from(JSON.stringify(bundle), 'utf8'),
    contentType: FHIR_CONTENT_TYPE,
    extension: 'json',
  };
}

/**
 * The Bundle {@link renderFhir} serializes. Null for a message without patient or results
 * (no PID, or an empty one), and for event types other than patient.created / updated /
 * merged / linked. Throws Hl7ParseError when the message does not parse.
 */
export function fhirBundle(input: RenderInput, opts: RenderOptions): Bundle | null {
  switch (input.kind) {
    case 'message':
      return messageBundle(input, opts);
    case 'event':
      return eventBundle(input, opts);
  }
}

// ---- bundle assembly ----------------------------------------------------------------------

/** A name-based UUID: SHA-256 of seed and key, version 8 (RFC 9562 custom) bits set. */
function stableUuid(seed: string, key: string): string {
  const b = createHash('sha256').update(`${seed}\n${key}`).digest();
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Drops undefined/null, blank strings, non-finite numbers, empty arrays and empty objects. */
function prune(v: unknown): unknown {
  if (v === undefined || v === null) {
    return undefined;
  }
  if (typeof v === 'string') {
    return v.trim() === '' ? undefined : v;
  }
  if (typeof v === 'number') {
    return Number.isFinite(v) ? v : undefined;
  }
  if (Array.isArray(v)) {
    const out = v.map(prune).filter((x) => x !== undefined);
    return out.length > 0 ? out : undefined;
  }
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) {
        out[k] = p;
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v;
}

/** True when a resource carries something besides its type. */
function hasContent(resource: object): boolean {
  const rest = Object.fromEntries(Object.entries(resource).filter(([k]) => k !== 'resourceType'));
  return prune(rest) !== undefined;
}

class BundleBuilder {
  private readonly entries: BundleEntry[] = [];

  constructor(private readonly seed: string) {}

  ref(key: string): Reference {
    return { reference: `urn:uuid:${stableUuid(this.seed, key)}` };
  }

  add(key: string, resource: FhirResource): Reference {
    const id = stableUuid(this.seed, key);
    const { resourceType, ...rest } = resource;
    const pruned = prune({ resourceType, id, ...rest }) as FhirResource;
    this.entries.push({ fullUrl: `urn:uuid:${id}`, resource: pruned });
    return { reference: `urn:uuid:${id}` };
  }

  /** The message Bundle: MessageHeader first, then the resources in the order added. */
  bundle(header: MessageHeader, timestamp: string | undefined): Bundle {
    const id = stableUuid(this.seed, 'MessageHeader');
    const { resourceType, ...rest } = header;
    const first: BundleEntry = {
      fullUrl: `urn:uuid:${id}`,
      resource: prune({ resourceType, id, ...rest }) as MessageHeader,
    };
    const bundle: Bundle = {
      resourceType: 'Bundle',
      id: stableUuid(this.seed, 'Bundle'),
      identifier: { system: DELIVERY_SYSTEM, value: this.seed },
      type: 'message',
      timestamp,
      entry: [first, ...this.entries],
    };
    return prune(bundle) as Bundle;
  }
}

/** Everything the mapping functions need besides the data. */
interface Ctx {
  opts: RenderOptions;
  /** The {@link IDENTIFIER_SYSTEMS_TABLE} table (may be empty). */
  systems: Readonly<Record<string, string>>;
  /** UTC offset of MSH-7, used for times sent without one (`+01:00`). */
  defaultOffset?: string;
  /** The message's escape character (for `\.br\` line breaks). */
  escape: string;
}

/** The engine is the source of the FHIR message; `focus` lists the resources it is about. */
function messageHeader(
  ctx: Ctx,
  event: MessageHeader['eventCoding'],
  focus: Reference[],
): MessageHeader {
  const app = ctx.opts.application;
  return {
    resourceType: 'MessageHeader',
    eventCoding: event,
    source: { name: app, endpoint: `urn:engine:application:${encodeURIComponent(app)}` },
    focus,
  };
}

// ---- dates --------------------------------------------------------------------------------

const ISO_PARTS =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

interface Moment {
  /** YYYY, YYYY-MM or YYYY-MM-DD */
  date: string;
  /** hh:mm:ss[.f], padded to seconds */
  time?: string;
  offset?: string;
}

/** A normalized date (libs/mpi DateValue) split for FHIR; undefined when not FHIR-valid. */
function moment(v: DateValue | null | undefined): Moment | undefined {
  const m = v ? ISO_PARTS.exec(v.value) : null;
  if (!m || m[1] === '0000') {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, off] = m;
  const date = [y, mo, d].filter((p) => p !== undefined).join('-');
  if (h === undefined || d === undefined) {
    return { date };
  }
  let offset: string | undefined = off;
  if (off !== undefined && off !== 'Z') {
    const hh = Number(off.slice(1, 3));
    offset = hh < 14 || off.slice(1) === '14:00' ? off : undefined;
  }
  return { date, time: `${h}:${mi ?? '00'}:${s ?? '00'}${frac ?? ''}`, offset };
}

function hl7Date(raw: string | undefined): DateValue | undefined {
  return parseHl7Date(raw);
}

/** FHIR `date`: the date part at the precision sent (a time is dropped). */
function fhirDate(v: DateValue | null | undefined): string | undefined {
  return moment(v)?.date;
}

/**
 * FHIR `dateTime`: date-only values as they are; a time needs an offset (its own, else MSH-7's)
 * and is reduced to the date when neither is known.
 */
function fhirDateTime(ctx: Ctx, v: DateValue | null | undefined): string | undefined {
  const m = moment(v);
  if (m?.time === undefined) {
    return m?.date;
  }
  const offset = m.offset ?? ctx.defaultOffset;
  return offset === undefined ? m.date : `${m.date}T${m.time}${offset}`;
}

/** FHIR `instant`: only when the value has a time and an offset is known. */
function fhirInstant(ctx: Ctx, v: DateValue | null | undefined): string | undefined {
  const m = moment(v);
  const offset = m?.offset ?? ctx.defaultOffset;
  return m?.time === undefined || offset === undefined ? undefined : `${m.date}T${m.time}${offset}`;
}

function dateInstant(d: Date | string): string | undefined {
  const date = d instanceof Date ? d : new Date(d);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** A Period; `end` is dropped when it is before `start`. */
function period(start: string | undefined, end: string | undefined): Period | undefined {
  if (start !== undefined && end !== undefined) {
    const a = Date.parse(start);
    const b = Date.parse(end);
    if (!Number.isNaN(a) && !Number.isNaN(b) && b < a) {
      return { start };
    }
  }
  return start === undefined && end === undefined ? undefined : { start, end };
}

// ---- small readers ------------------------------------------------------------------------

function text(seg: Hl7Segment, path: string): string | undefined {
  return tidyText(seg.get(path));
}

function reps(seg: Hl7Segment, field: number): number {
  return seg.getAll(field).length;
}

function defined<T>(v: T | undefined): v is T {
  return v !== undefined;
}

/** System URI of a v2 coding-system name (CWE-3), or an engine URN for local names. */
function codingSystem(name: string | undefined): string | undefined {
  if (name === undefined) {
    return undefined;
  }
  const known = CODING_SYSTEMS[name.toUpperCase()];
  if (known !== undefined) {
    return known;
  }
  const table = /^HL7(\d{4})$/i.exec(name);
  if (table) {
    return v2Table(table[1]);
  }
  if (OID.test(name)) {
    return `urn:oid:${name}`;
  }
  if (URI.test(name)) {
    return name;
  }
  // a local name (table 0396 `99zzz`, `L`, …); free text in CWE-3 names no system
  return /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,19}$/.test(name)
    ? `urn:engine:codesystem:${encodeURIComponent(name)}`
    : undefined;
}

/** CE/CWE/CNE at `base` (`'3'`, `'5[2]'`) → CodeableConcept (primary and alternate codes). */
function cwe(seg: Hl7Segment, base: string): CodeableConcept | undefined {
  const coding = (c: number, d: number, s: number, v: number) => {
    const code = text(seg, `${base}.${c}`);
    return code === undefined
      ? undefined
      : {
          system: codingSystem(text(seg, `${base}.${s}`)),
          version: text(seg, `${base}.${v}`),
          code,
          display: text(seg, `${base}.${d}`),
        };
  };
  const codings = [coding(1, 2, 3, 7), coding(4, 5, 6, 8)].filter(defined);
  const original =
    text(seg, `${base}.9`) ??
    (codings.length === 0 ? (text(seg, `${base}.2`) ?? text(seg, `${base}.5`)) : undefined);
  if (codings.length === 0 && original === undefined) {
    return undefined;
  }
  return { coding: codings, text: original };
}

/** A code of v2 table `table` → CodeableConcept with that table's system. */
function v2Coded(code: string | undefined, table: string): CodeableConcept | undefined {
  return code === undefined ? undefined : { coding: [{ system: v2Table(table), code }] };
}

// ---- identifiers --------------------------------------------------------------------------

/**
 * The identifier system of an assigning authority: the {@link IDENTIFIER_SYSTEMS_TABLE} entry,
 * else `urn:oid:` / `urn:uuid:` when the authority is one, the authority itself when it is a
 * URI, else `urn:engine:authority:<authority>`. Message and event Bundles use this one rule,
 * so a record gets the same system in both.
 */
function identifierSystem(ctx: Ctx, authority: string | undefined): string | undefined {
  if (authority === undefined || authority === '') {
    return undefined;
  }
  const mapped = ctx.systems[authority];
  if (mapped !== undefined) {
    return mapped;
  }
  if (OID.test(authority)) {
    return `urn:oid:${authority}`;
  }
  if (UUID.test(authority)) {
    return `urn:uuid:${authority.toLowerCase()}`;
  }
  return URI.test(authority) ? authority : `urn:engine:authority:${encodeURIComponent(authority)}`;
}

function identifierType(code: string | undefined): CodeableConcept | undefined {
  if (code === undefined) {
    return undefined;
  }
  return V2_0203_CODES.has(code) ? { coding: [{ system: V2_0203, code }] } : { text: code };
}

interface IdParts {
  value: string;
  /** CX-4.1 / EI-2, else CX-4.2 / EI-3 (the MPI's notion of authority). */
  authority?: string;
  type?: string;
}

/** CX at `base` (`'3[2]'`). */
function cx(seg: Hl7Segment, base: string): IdParts | undefined {
  const value = text(seg, `${base}.1.1`);
  if (value === undefined) {
    return undefined;
  }
  return {
    value,
    authority: text(seg, `${base}.4.1`) ?? text(seg, `${base}.4.2`),
    type: text(seg, `${base}.5.1`)?.toUpperCase(),
  };
}

/** EI at field `f` (entity id ^ namespace ^ universal id ^ type). */
function ei(seg: Hl7Segment | undefined, f: number): IdParts | undefined {
  const value = seg ? text(seg, `${f}.1`) : undefined;
  if (seg === undefined || value === undefined) {
    return undefined;
  }
  return { value, authority: text(seg, `${f}.2`) ?? text(seg, `${f}.3`) };
}

function cxList(seg: Hl7Segment, f: number): IdParts[] {
  const out: IdParts[] = [];
  for (let r = 1; r <= reps(seg, f); r++) {
    const id = cx(seg, `${f}[${r}]`);
    if (id) {
      out.push(id);
    }
  }
  return out;
}

function toIdentifier(ctx: Ctx, p: IdParts, defaultType?: string): FhirIdentifier {
  return {
    type: identifierType(p.type ?? defaultType),
    system: identifierSystem(ctx, p.authority),
    value: p.value,
  };
}

/**
 * PID-3 / MRG-1 identifiers; the MRN (first of type MR, else the first) gets the message's
 * fallback authority when it has none, as libs/mpi keys its source record.
 */
function patientIdentifiers(ctx: Ctx, ids: IdParts[], fallbackAuthority: string): FhirIdentifier[] {
  const mrnIndex = Math.max(
    0,
    ids.findIndex((i) => i.type === 'MR'),
  );
  return ids.map((id, i) =>
    toIdentifier(
      ctx,
      i === mrnIndex && id.authority === undefined && fallbackAuthority !== ''
        ? { ...id, authority: fallbackAuthority }
        : id,
    ),
  );
}

function euidIdentifier(ctx: Ctx, euid: string): FhirIdentifier {
  const authority = ctx.opts.euidAuthority;
  const system =
    ctx.systems[authority] ??
    (OID.test(authority)
      ? `urn:oid:${authority}`
      : `urn:engine:euid:${encodeURIComponent(authority)}`);
  return { use: 'official', type: identifierType('PI'), system, value: euid };
}

interface RecordRef {
  authority: string;
  mrn: string;
}

function recordIdentifier(ctx: Ctx, r: RecordRef): FhirIdentifier {
  return toIdentifier(ctx, { value: r.mrn, authority: r.authority || undefined }, 'MR');
}

function ssnIdentifier(value: string): FhirIdentifier {
  return { type: identifierType('SS'), system: US_SSN, value };
}

// ---- demographics -------------------------------------------------------------------------

function gender(code: string | undefined): Patient['gender'] {
  return code === undefined ? undefined : (GENDER[code.toUpperCase()] ?? 'unknown');
}

/** XPN at `base` (`'5[1]'`) as sent (not upper-cased). */
function xpn(seg: Hl7Segment, base: string, defaultType?: string): HumanName | undefined {
  const family = text(seg, `${base}.1.1`);
  const given = [text(seg, `${base}.2`), ...(text(seg, `${base}.3`)?.split(' ') ?? [])].filter(
    defined,
  );
  if (family === undefined && given.length === 0) {
    return undefined;
  }
  const type = text(seg, `${base}.7`)?.toUpperCase() ?? defaultType;
  return {
    use: type === undefined ? undefined : NAME_USE[type],
    family,
    given,
    prefix: [text(seg, `${base}.5`)].filter(defined),
    suffix: [text(seg, `${base}.4`), text(seg, `${base}.6`)].filter(defined),
  };
}

function xpnList(seg: Hl7Segment, f: number, defaultType?: string): HumanName[] {
  const out: HumanName[] = [];
  for (let r = 1; r <= reps(seg, f); r++) {
    const n = xpn(seg, `${f}[${r}]`, defaultType);
    if (n) {
      out.push(n);
    }
  }
  return out;
}

/** A golden-record name (libs/mpi PersonName). */
function humanName(n: PersonName | undefined): HumanName | undefined {
  if (n === undefined || (n.family === undefined && n.given === undefined)) {
    return undefined;
  }
  return {
    use: NAME_USE[n.type],
    family: n.family,
    given: [n.given, ...(n.middle?.split(' ') ?? [])].filter(defined),
    prefix: [n.prefix].filter(defined),
    suffix: [n.suffix].filter(defined),
  };
}

function addressKind(type: string | undefined): Pick<FhirAddress, 'use' | 'type'> {
  return (type === undefined ? undefined : ADDRESS_KIND[type.toUpperCase()]) ?? {};
}

/** XAD at `base` (`'11[1]'`) as sent. */
function xad(seg: Hl7Segment, base: string): FhirAddress | undefined {
  const address: FhirAddress = {
    line: [text(seg, `${base}.1.1`), text(seg, `${base}.2`)].filter(defined),
    city: text(seg, `${base}.3`),
    district: text(seg, `${base}.9`),
    state: text(seg, `${base}.4`),
    postalCode: text(seg, `${base}.5`),
    country: text(seg, `${base}.6`),
  };
  return hasContent(address) ? { ...addressKind(text(seg, `${base}.7`)), ...address } : undefined;
}

function xadList(seg: Hl7Segment, f: number): FhirAddress[] {
  const out: FhirAddress[] = [];
  for (let r = 1; r <= reps(seg, f); r++) {
    const a = xad(seg, `${f}[${r}]`);
    if (a) {
      out.push(a);
    }
  }
  return out;
}

/** A golden-record address (libs/mpi Address). */
function fhirAddress(a: Address): FhirAddress {
  return {
    ...addressKind(a.type),
    line: [a.line1, a.line2].filter(defined),
    city: a.city,
    district: a.county,
    state: a.state,
    postalCode: a.postalCode,
    country: a.country,
  };
}

function contactPoint(t: Telecom): ContactPoint {
  const use = t.use === 'home' || t.use === 'work' || t.use === 'mobile' ? t.use : undefined;
  const value = t.extension === undefined ? t.value : `${t.value} ext. ${t.extension}`;
  return { system: t.system, value, use };
}

function maritalStatus(code: string | null | undefined): CodeableConcept | undefined {
  const c = tidyText(code)?.toUpperCase();
  if (c === undefined) {
    return undefined;
  }
  const mapped = MARITAL[c];
  return mapped === undefined
    ? { text: c }
    : { coding: [mapped, { system: v2Table('0002'), code: c }] };
}

function communication(language: string | null | undefined): Patient['communication'] {
  const code = tidyText(language);
  if (code === undefined) {
    return undefined;
  }
  const m = /^([a-z]{2})(?:-([a-z]{2}))?$/i.exec(code);
  const bcp47 = m ? `${m[1].toLowerCase()}${m[2] ? `-${m[2].toUpperCase()}` : ''}` : undefined;
  return [
    {
      language: bcp47 === undefined ? { text: code } : { coding: [{ system: BCP47, code: bcp47 }] },
    },
  ];
}

function deceased(ctx: Ctx, d: Deceased | null | undefined): Partial<Patient> {
  const when = fhirDateTime(ctx, d?.date);
  if (when !== undefined) {
    return { deceasedDateTime: when };
  }
  return d?.indicator === undefined ? {} : { deceasedBoolean: d.indicator };
}

function multipleBirth(m: MultipleBirth | null | undefined): Partial<Patient> {
  if (m?.order !== undefined && Number.isInteger(m.order) && m.order > 0) {
    return { multipleBirthInteger: m.order };
  }
  return m?.indicator === undefined ? {} : { multipleBirthBoolean: m.indicator };
}

function mothersMaidenName(family: string | undefined): Extension[] {
  return family === undefined ? [] : [{ url: EXT_MOTHERS_MAIDEN_NAME, valueString: family }];
}

/** birthDate, plus the patient-birthTime extension when PID-7 has a time. */
function birth(ctx: Ctx, v: DateValue | null | undefined): Partial<Patient> {
  const birthDate = fhirDate(v);
  const time = fhirDateTime(ctx, v);
  if (birthDate === undefined || time === undefined || !time.includes('T')) {
    return { birthDate };
  }
  return {
    birthDate,
    _birthDate: { extension: [{ url: EXT_BIRTH_TIME, valueDateTime: time }] },
  };
}

/** PID → Patient. Names and addresses as sent; telecom, dates and the rest via libs/mpi. */
function patientFromSegment(
  ctx: Ctx,
  pid: Hl7Segment,
  fallbackAuthority: string,
  euid: string | null,
): Patient {
  const rec = patientFromPid(pid, fallbackAuthority);
  const identifier = [
    ...patientIdentifiers(ctx, cxList(pid, 3), fallbackAuthority),
    ...cxList(pid, 2).map((id) => toIdentifier(ctx, id)),
    ...cxList(pid, 4).map((id) => toIdentifier(ctx, id)),
    ...cxList(pid, 18).map((id) => toIdentifier(ctx, id, 'AN')),
    ...rec.identifiers.filter((i) => i.source === 'PID-19').map((i) => ssnIdentifier(i.value)),
  ];
  const maiden = xpn(pid, '6[1]')?.family;
  const patient: Patient = {
    resourceType: 'Patient',
    extension: mothersMaidenName(maiden),
    identifier,
    name: [...xpnList(pid, 5), ...xpnList(pid, 9, 'A')],
    telecom: (rec.telecom ?? []).map(contactPoint),
    gender: gender(text(pid, '8.1')),
    ...birth(ctx, rec.birthDate),
    ...deceased(ctx, rec.deceased),
    address: xadList(pid, 11),
    maritalStatus: maritalStatus(rec.maritalStatus),
    ...multipleBirth(rec.multipleBirth),
    communication: communication(rec.language),
  };
  if (!hasContent(patient)) {
    return patient; // nothing from the PID: the caller drops it (an EUID alone says nothing)
  }
  if (euid !== null && euid !== '') {
    patient.identifier = [euidIdentifier(ctx, euid), ...identifier];
  }
  return patient;
}

/** MRG → the replaced (retired) Patient, or undefined when MRG names nobody. */
function retiredFromMrg(ctx: Ctx, mrg: Hl7Segment, fallbackAuthority: string): Patient | undefined {
  const patient: Patient = {
    resourceType: 'Patient',
    identifier: [
      ...patientIdentifiers(ctx, cxList(mrg, 1), fallbackAuthority),
      ...cxList(mrg, 2).map((id) => toIdentifier(ctx, id)),
      ...cxList(mrg, 4).map((id) => toIdentifier(ctx, id)),
    ],
    name: xpnList(mrg, 7),
  };
  if (!hasContent(patient)) {
    return undefined;
  }
  return { ...patient, active: false };
}

/** Golden record (libs/mpi) + EUID + source-record identifiers → Patient. */
function patientFromGolden(
  ctx: Ctx,
  euid: string | undefined,
  golden: GoldenRecord | undefined,
  records: RecordRef[],
): Patient {
  const g = golden ?? {};
  return {
    resourceType: 'Patient',
    extension: mothersMaidenName(g.mothersMaidenName?.family),
    identifier: [
      ...(euid === undefined ? [] : [euidIdentifier(ctx, euid)]),
      ...records.map((r) => recordIdentifier(ctx, r)),
      ...(g.ssn === undefined ? [] : [ssnIdentifier(g.ssn)]),
    ],
    name: [humanName(g.name)].filter(defined),
    telecom: (g.telecom ?? []).map(contactPoint),
    gender: gender(g.sex),
    birthDate: fhirDate(g.birthDate),
    ...deceased(ctx, g.deceased),
    address: g.address === undefined ? [] : [fhirAddress(g.address)],
    maritalStatus: maritalStatus(g.maritalStatus),
    ...multipleBirth(g.multipleBirth),
    communication: communication(g.language),
  };
}

function link(other: Reference, type: PatientLink['type']): PatientLink {
  return { other, type };
}

// ---- encounter ----------------------------------------------------------------------------

function locationDisplay(l: Location | undefined): string | undefined {
  if (l === undefined) {
    return undefined;
  }
  const parts = [l.pointOfCare, l.room, l.bed, l.facility, l.building, l.floor].filter(defined);
  return l.description ?? (parts.length > 0 ? parts.join(' ') : undefined);
}

function practitionerDisplay(p: Practitioner): string | undefined {
  const parts = [p.prefix, p.given, p.middle, p.family].filter(defined);
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/** Table 0004 codes (patient class). */
const V2_0004_CODES = new Set(['B', 'C', 'E', 'I', 'N', 'O', 'P', 'R', 'U']);

/**
 * PV1-2 → Encounter.class (1..1, extensible binding): the v3 ActCode when one fits, else the
 * table 0004 code (B, C, N, U), else NullFlavor OTH (a code outside the table) or UNK (empty).
 */
function encounterClass(code: string | undefined): FhirEncounter['class'] {
  const c = code?.toUpperCase();
  if (c === undefined) {
    return { system: V3_NULL_FLAVOR, code: 'UNK' };
  }
  const mapped = ENCOUNTER_CLASS[c];
  if (mapped !== undefined) {
    return { system: V3_ACT_CODE, code: mapped };
  }
  return V2_0004_CODES.has(c)
    ? { system: v2Table('0004'), code: c }
    : { system: V3_NULL_FLAVOR, code: 'OTH' };
}

/** PV1 (+ PV2) → Encounter; undefined when PV1 carries nothing. */
function encounterFromSegments(
  ctx: Ctx,
  pv1: Hl7Segment,
  pv2: Hl7Segment | undefined,
  trigger: string,
  subject: Reference | undefined,
): FhirEncounter | undefined {
  const e = encounterFromPv1(pv1, pv2, trigger);
  if (e === undefined) {
    return undefined;
  }
  const visit = cx(pv1, '19[1]');
  const status =
    ENCOUNTER_STATUS[trigger] ?? (e.dischargeAt === undefined ? 'unknown' : 'finished');
  const location: EncounterLocation[] = [];
  const current = locationDisplay(e.location);
  if (current !== undefined) {
    location.push({ location: { display: current }, status: 'active' });
  }
  const prior = locationDisplay(e.priorLocation);
  if (prior !== undefined) {
    location.push({ location: { display: prior }, status: 'completed' });
  }
  const participant: EncounterParticipant[] = [];
  if (e.attending !== undefined) {
    participant.push({
      type: [{ coding: [{ system: V3_PARTICIPATION, code: 'ATND' }] }],
      individual: {
        display: practitionerDisplay(e.attending),
        identifier: e.attending.id === undefined ? undefined : { value: e.attending.id },
      },
    });
  }
  return {
    resourceType: 'Encounter',
    identifier: visit === undefined ? [] : [toIdentifier(ctx, visit, 'VN')],
    status,
    class: encounterClass(e.class),
    serviceType: v2Coded(e.hospitalService, '0069'),
    subject,
    participant,
    period: period(fhirDateTime(ctx, e.admitAt), fhirDateTime(ctx, e.dischargeAt)),
    hospitalization:
      e.dischargeDisposition === undefined
        ? undefined
        : { dischargeDisposition: v2Coded(e.dischargeDisposition, '0112') },
    location,
  };
}

// ---- results ------------------------------------------------------------------------------

interface Units {
  unit?: string;
  system?: string;
  code?: string;
}

/** OBX-6: UCUM when CWE-3 says so, or when no system is named and the code is a common UCUM unit. */
function unitsOf(obx: Hl7Segment): Units | undefined {
  const code = text(obx, '6.1');
  const display = text(obx, '6.2');
  const system = text(obx, '6.3')?.toUpperCase();
  if (code === undefined && display === undefined) {
    return undefined;
  }
  const ucum =
    code !== undefined && (system === 'UCUM' || (system === undefined && COMMON_UCUM.has(code)));
  return ucum ? { unit: code, system: UCUM, code } : { unit: code ?? display };
}

function quantity(value: number, units: Units | undefined): Quantity {
  return { value, ...units };
}

function decimal(raw: string | undefined): number | undefined {
  const t = raw?.trim();
  return t !== undefined && DECIMAL.test(t) ? Number(t) : undefined;
}

type ObservationValue = Pick<
  Observation,
  | 'valueQuantity'
  | 'valueString'
  | 'valueCodeableConcept'
  | 'valueRange'
  | 'valueRatio'
  | 'valueDateTime'
>;

const COMPARATORS = new Set(['<', '<=', '>=', '>']);

function comparator(c: string): Quantity['comparator'] {
  return COMPARATORS.has(c) ? (c as Quantity['comparator']) : undefined;
}

/** SN (`>^100`, `^182`, `^10^-^20`, `^1^:^128`) → Quantity, Range or Ratio when it fits. */
function structuredNumeric(
  obx: Hl7Segment,
  base: string,
  units: Units | undefined,
): ObservationValue | undefined {
  const comp = text(obx, `${base}.1`);
  const n1 = decimal(obx.get(`${base}.2`));
  const sep = text(obx, `${base}.3`);
  const n2 = decimal(obx.get(`${base}.4`));
  if (n1 === undefined) {
    return undefined;
  }
  if (sep === undefined && n2 === undefined) {
    if (comp === undefined || comp === '=') {
      return { valueQuantity: quantity(n1, units) };
    }
    const c = comparator(comp);
    return c === undefined
      ? undefined
      : { valueQuantity: { ...quantity(n1, units), comparator: c } };
  }
  if ((comp !== undefined && comp !== '=') || n2 === undefined) {
    return undefined;
  }
  if (sep === '-' && n1 <= n2) {
    return { valueRange: { low: quantity(n1, units), high: quantity(n2, units) } };
  }
  if (sep === ':' || sep === '/') {
    return { valueRatio: { numerator: { value: n1 }, denominator: { value: n2 } } };
  }
  return undefined;
}

/** NM text: a number, or a comparator and a number (`<0.5`). */
function numeric(raw: string, units: Units | undefined): ObservationValue | undefined {
  const n = parseNumber(raw);
  if (n !== undefined) {
    return { valueQuantity: quantity(n, units) };
  }
  const m = /^\s*(<=|>=|<|>)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$/.exec(raw);
  const c = m ? comparator(m[1]) : undefined;
  return m && c
    ? { valueQuantity: { ...quantity(Number(m[2]), units), comparator: c } }
    : undefined;
}

function lineBreaks(ctx: Ctx, s: string): string {
  return s.split(`${ctx.escape}.br${ctx.escape}`).join('\n');
}

/** OBX-5 typed by OBX-2 (first non-empty repetition; text types join every repetition). */
function observationValue(ctx: Ctx, obx: Hl7Segment, valueType: string): ObservationValue {
  const values: Array<{ r: number; raw: string }> = [];
  for (let r = 1; r <= reps(obx, 5); r++) {
    const raw = obx.get(`5[${r}]`);
    if (raw !== undefined && raw.trim() !== '' && !isExplicitNull(raw)) {
      values.push({ r, raw });
    }
  }
  if (values.length === 0) {
    return {};
  }
  const [{ r, raw }] = values;
  const base = `5[${r}]`;
  const asString = (): ObservationValue => ({ valueString: lineBreaks(ctx, raw).trim() });
  const units = unitsOf(obx);
  switch (valueType) {
    case 'NM':
      return numeric(raw, units) ?? asString();
    case 'SN':
      return structuredNumeric(obx, base, units) ?? asString();
    case 'ST':
    case 'TX':
    case 'FT':
      return { valueString: values.map((v) => lineBreaks(ctx, v.raw).trimEnd()).join('\n') };
    case 'CE':
    case 'CWE':
    case 'CNE': {
      const cc = cwe(obx, base);
      return cc === undefined ? asString() : { valueCodeableConcept: cc };
    }
    case 'DT':
    case 'TS':
    case 'DTM': {
      const when = fhirDateTime(ctx, hl7Date(obx.get(`${base}.1`)));
      return when === undefined ? asString() : { valueDateTime: when };
    }
    default:
      return asString();
  }
}

/** OBX-7 → referenceRange: `low-high`, `<x`/`>x`, else the text as sent. */
function referenceRange(
  raw: string | undefined,
  units: Units | undefined,
): ObservationReferenceRange[] {
  const t = tidyText(raw);
  if (t === undefined) {
    return [];
  }
  const num = '([+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+))';
  const range = new RegExp(`^${num}\\s*-\\s*${num}$`).exec(t);
  if (range && Number(range[1]) <= Number(range[2])) {
    return [{ low: quantity(Number(range[1]), units), high: quantity(Number(range[2]), units) }];
  }
  const bound = new RegExp(`^(<=|>=|<|>)\\s*${num}$`).exec(t);
  if (bound) {
    const q = quantity(Number(bound[2]), units);
    return [bound[1].startsWith('<') ? { high: q, text: t } : { low: q, text: t }];
  }
  return [{ text: t }];
}

function interpretation(obx: Hl7Segment): CodeableConcept[] {
  const out: CodeableConcept[] = [];
  for (let r = 1; r <= reps(obx, 8); r++) {
    const code = text(obx, `8[${r}].1`);
    if (code !== undefined) {
      out.push(
        V3_INTERPRETATION_CODES.has(code)
          ? { coding: [{ system: V3_INTERPRETATION, code }] }
          : { text: code },
      );
    }
  }
  return out;
}

interface ObxItem {
  obx: Hl7Segment;
  notes: string[];
}

function observationResource(
  ctx: Ctx,
  item: ObxItem,
  obr: Hl7Segment | undefined,
  subject: Reference | undefined,
  encounter: Reference | undefined,
): Observation {
  const { obx } = item;
  const units = unitsOf(obx);
  return {
    resourceType: 'Observation',
    status: OBSERVATION_STATUS[text(obx, '11')?.toUpperCase() ?? ''] ?? 'unknown',
    code: cwe(obx, '3') ?? UNKNOWN_CODE,
    subject,
    encounter,
    effectiveDateTime:
      fhirDateTime(ctx, hl7Date(obx.get('14.1'))) ??
      (obr ? fhirDateTime(ctx, hl7Date(obr.get('7.1'))) : undefined),
    ...observationValue(ctx, obx, text(obx, '2.1')?.toUpperCase() ?? ''),
    interpretation: interpretation(obx),
    note: item.notes.map((n) => ({ text: n })),
    method: cwe(obx, '17'),
    referenceRange: referenceRange(obx.get('7'), units),
  };
}

interface OrderItem {
  obr?: Hl7Segment;
  orc?: Hl7Segment;
  observations: ObxItem[];
  /** Index of the patient group the order belongs to (-1: none). */
  group: number;
}

function reportResource(
  ctx: Ctx,
  order: OrderItem & { obr: Hl7Segment },
  subject: Reference | undefined,
  encounter: Reference | undefined,
  results: Reference[],
): DiagnosticReport {
  const { obr, orc } = order;
  const placer = ei(obr, 2) ?? ei(orc, 2);
  const filler = ei(obr, 3) ?? ei(orc, 3);
  const start = fhirDateTime(ctx, hl7Date(obr.get('7.1')));
  const end = fhirDateTime(ctx, hl7Date(obr.get('8.1')));
  return {
    resourceType: 'DiagnosticReport',
    identifier: [
      placer ? toIdentifier(ctx, placer, 'PLAC') : undefined,
      filler ? toIdentifier(ctx, filler, 'FILL') : undefined,
    ].filter(defined),
    status: REPORT_STATUS[text(obr, '25')?.toUpperCase() ?? ''] ?? 'unknown',
    code: cwe(obr, '4') ?? UNKNOWN_CODE,
    subject,
    encounter,
    ...(end === undefined ? { effectiveDateTime: start } : { effectivePeriod: period(start, end) }),
    issued: fhirInstant(ctx, hl7Date(obr.get('22.1'))),
    result: results,
  };
}

// ---- message → Bundle ---------------------------------------------------------------------

/**
 * Orders as the FHIR bundle reads them (libs/mpi `groupSegments`): in result messages each OBR
 * opens an order (a DiagnosticReport); OBX segments join the current order, or open one without
 * OBR, also in ADT (Observations only); a PID closes the open order; an NTE becomes a note of
 * the OBX it follows (notes after an OBR are left out).
 */
function orderGrouping(type: string): OrderGrouping<OrderItem, ObxItem> {
  return {
    reports: RESULT_TYPES.has(type),
    observations: OBSERVATION_TYPES.has(type),
    pidClosesOrder: true,
    order: (_msg, obr, orc, group) =>
      obr ? { obr, orc, observations: [], group } : { orc, observations: [], group },
    observation: (_msg, order, obx) => {
      const item: ObxItem = { obx, notes: [] };
      order.observations.push(item);
      return item;
    },
    note: (_msg, nte, _order, item) => {
      const note = tidyText(nte.getAll(3).join('\n'));
      if (item && note !== undefined) {
        item.notes.push(note);
      }
    },
  };
}

function messageBundle(input: RenderInput, opts: RenderOptions): Bundle | null {
  const source = input.message;
  if (source === undefined) {
    return null;
  }
  const msg = parseMessage(
    source.raw,
    source.defaultCharset === undefined ? undefined : { defaultCharset: source.defaultCharset },
  );
  const type = tidyText(msg.messageType)?.toUpperCase() ?? '';
  const evn = msg.segment('EVN');
  const trigger =
    tidyText(msg.triggerEvent)?.toUpperCase() ??
    (evn ? text(evn, '1')?.toUpperCase() : undefined) ??
    '';
  const sentAt = hl7Date(msg.get('MSH-7.1'));
  const ctx: Ctx = {
    opts,
    systems: opts.tables[IDENTIFIER_SYSTEMS_TABLE] ?? {},
    defaultOffset: moment(sentAt)?.offset,
    escape: msg.delimiters.escape,
  };
  const sender = tidyText(msg.get('MSH-4.1')) ?? tidyText(msg.get('MSH-3.1'));
  const fallbackAuthority = sender ?? '';
  const { patients: groups, orders } = groupSegments(msg, orderGrouping(type));

  const b = new BundleBuilder(input.deliveryId);
  const focus: Reference[] = [];
  const subjects: Array<Reference | undefined> = [];
  const encounters: Array<Reference | undefined> = [];
  const patients: Array<{ key: string; resource: Patient } | undefined> = groups.map((g, i) => {
    const resource = patientFromSegment(ctx, g.pid, fallbackAuthority, i === 0 ? input.euid : null);
    return hasContent(resource) ? { key: `Patient/${i + 1}`, resource } : undefined;
  });
  // A24 links the second patient's records to the first one's person
  if (trigger === 'A24' && patients[0] && patients[1]) {
    patients[0].resource.link = [link(b.ref(patients[1].key), 'seealso')];
    patients[1].resource.link = [link(b.ref(patients[0].key), 'seealso')];
  }
  groups.forEach((g, i) => {
    const p = patients[i];
    let retired: Patient | undefined;
    if (p && g.mrg && MERGE_TRIGGERS.has(trigger)) {
      retired = retiredFromMrg(ctx, g.mrg, fallbackAuthority);
    }
    if (p) {
      if (retired) {
        p.resource.link = [
          ...(p.resource.link ?? []),
          link(b.ref(`${p.key}/replaced`), 'replaces'),
        ];
      }
      const subject = b.add(p.key, p.resource);
      subjects[i] = subject;
      focus.push(subject);
    }
    if (p && retired) {
      retired.link = [link(b.ref(p.key), 'replaced-by')];
      focus.push(b.add(`${p.key}/replaced`, retired));
    }
    const encounter = g.pv1
      ? encounterFromSegments(ctx, g.pv1, g.pv2, trigger, subjects[i])
      : undefined;
    if (encounter) {
      const ref = b.add(`Encounter/${i + 1}`, encounter);
      encounters[i] = ref;
      focus.push(ref);
    }
  });

  orders.forEach((order, k) => {
    const subject = order.group >= 0 ? subjects[order.group] : undefined;
    const encounter = order.group >= 0 ? encounters[order.group] : undefined;
    const results = order.observations.map((item, j) => b.ref(`Observation/${k + 1}.${j + 1}`));
    if (order.obr) {
      focus.push(
        b.add(
          `DiagnosticReport/${k + 1}`,
          reportResource(ctx, { ...order, obr: order.obr }, subject, encounter, results),
        ),
      );
    }
    order.observations.forEach((item, j) => {
      b.add(
        `Observation/${k + 1}.${j + 1}`,
        observationResource(ctx, item, order.obr, subject, encounter),
      );
    });
  });

  if (focus.length === 0 && orders.every((o) => o.observations.length === 0)) {
    return null;
  }
  const header = messageHeader(
    ctx,
    trigger === ''
      ? { system: v2Table('0076'), code: type || undefined }
      : { system: v2Table('0003'), code: trigger },
    focus,
  );
  header.sender = sender === undefined ? undefined : { display: sender };
  return b.bundle(header, fhirInstant(ctx, sentAt) ?? dateInstant(source.receivedAt));
}

// ---- event → Bundle -----------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

function recordRef(v: unknown): RecordRef | undefined {
  if (!isObject(v)) {
    return undefined;
  }
  const mrn = str(v.mrn);
  return mrn === undefined ? undefined : { authority: str(v.authority) ?? '', mrn };
}

function recordRefs(...values: unknown[]): RecordRef[] {
  const flat: unknown[] = values.flatMap((v): unknown[] => (Array.isArray(v) ? v : [v]));
  return flat.map(recordRef).filter(defined);
}

function goldenOf(v: unknown): GoldenRecord | undefined {
  return isObject(v) ? v : undefined;
}

function eventBundle(input: RenderInput, opts: RenderOptions): Bundle | null {
  const ev = input.event;
  if (ev === undefined) {
    return null;
  }
  const ctx: Ctx = { opts, systems: opts.tables[IDENTIFIER_SYSTEMS_TABLE] ?? {}, escape: '\\' };
  const p = ev.payload;
  const euid = str(p.euid) ?? str(ev.euid);
  const b = new BundleBuilder(input.deliveryId);
  const focus: Reference[] = [];
  switch (ev.type) {
    case 'patient.created':
    case 'patient.updated': {
      const patient = patientFromGolden(ctx, euid, goldenOf(p.golden), recordRefs(p.records));
      focus.push(b.add('Patient/1', patient));
      break;
    }
    case 'patient.merged': {
      // from a message: {survivor, retired} records; from a worklist: {golden, records}
      const retiredEuid = str(p.retiredEuid);
      const survivor = patientFromGolden(
        ctx,
        euid,
        goldenOf(p.golden),
        recordRefs(p.survivor, p.records),
      );
      const retired: Patient = {
        ...patientFromGolden(ctx, retiredEuid, undefined, recordRefs(p.retired)),
        active: false,
        link: [link(b.ref('Patient/survivor'), 'replaced-by')],
      };
      const hasRetired = (retired.identifier ?? []).length > 0;
      if (hasRetired) {
        survivor.link = [link(b.ref('Patient/retired'), 'replaces')];
      }
      focus.push(b.add('Patient/survivor', survivor));
      if (hasRetired) {
        focus.push(b.add('Patient/retired', retired));
      }
      break;
    }
    case 'patient.linked': {
      const linkedEuid = str(p.linkedEuid);
      const target = patientFromGolden(
        ctx,
        euid,
        goldenOf(p.golden),
        recordRefs(p.records, p.record),
      );
      const other = linkedEuid !== undefined && linkedEuid !== euid;
      if (other) {
        target.link = [link(b.ref('Patient/linked'), 'seealso')];
      }
      focus.push(b.add('Patient/target', target));
      if (other) {
        const linked: Patient = {
          ...patientFromGolden(ctx, linkedEuid, undefined, []),
          link: [link(b.ref('Patient/target'), 'seealso')],
        };
        focus.push(b.add('Patient/linked', linked));
      }
      break;
    }
    default:
      return null;
  }
  const header = messageHeader(ctx, { system: ENGINE_EVENT_SYSTEM, code: ev.type }, focus);
  return b.bundle(header, dateInstant(ev.createdAt));
}
