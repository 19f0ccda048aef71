/**
 * The canonical model of `@engine/mpi`: what one HL7 v2 message says about a patient, an
 * encounter, results and merges, in a shape independent of the HL7 version and of the sender.
 *
 * Absent vs deleted: a property that is `undefined` (or missing) was not sent and leaves any
 * stored value alone; `null` means the sender sent the HL7 explicit null `""`, i.e. "delete
 * the stored value".
 */

/** A value the sender did not send (`undefined`) or explicitly nulled (`null`, from `""`). */
export type Nullable<T> = T | null | undefined;

/** Precision of a date/time, from the number of digits the sender gave. */
export type DatePrecision = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second';

/**
 * An HL7 date/time as ISO 8601 at the precision it was sent: `1962`, `1962-03`, `1962-03-05`,
 * `2012-07-17T15`, `2012-07-17T15:25`, `2012-07-17T15:25:09.746`, with `+01:00`/`-04:00` when the
 * sender gave an offset (no offset: local time of the sender, no `Z`).
 */
export interface DateValue {
  value: string;
  precision: DatePrecision;
}

/** A code with its display text and coding system (`LN` is reported as `LOINC`). */
export interface Coded {
  code?: string;
  display?: string;
  system?: string;
}

/** Sex (PID-8) on the FHIR-like scale: female, male, other, unknown. */
export type Sex = 'F' | 'M' | 'O' | 'U';

/** Where an identifier came from. */
export type IdentifierSource = 'PID-2' | 'PID-3' | 'PID-4' | 'PID-19' | 'MRG-1';

export interface Identifier {
  value: string;
  /** Assigning authority: CX-4.1 namespace, else CX-4.2 universal id; '' when not sent. */
  authority: string;
  /** Identifier type code (CX-5, table 0203: MR, PI, SS, NH, …); '' when not sent. */
  type: string;
  assigningFacility?: string;
  source: IdentifierSource;
}

/**
 * Name type (XPN-7, table 0200): 'L' legal (the default), 'A' alias (also every PID-9 name),
 * 'M' maiden, 'D' display, 'N' nickname, 'B' birth, … kept as sent when another code.
 */
export type NameType = string;

export interface PersonName {
  family?: string;
  given?: string;
  /** Second and further given names (XPN-3). */
  middle?: string;
  prefix?: string;
  suffix?: string;
  type: NameType;
}

export interface Address {
  line1?: string;
  line2?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  country?: string;
  /** Address type (XAD-7: H home, M mailing, B business, L legal, …). */
  type?: string;
  county?: string;
}

export type TelecomSystem = 'phone' | 'email' | 'fax';
export type TelecomUse = 'home' | 'work' | 'mobile' | 'emergency' | 'other';

export interface Telecom {
  system: TelecomSystem;
  /** Phones: digits only, a leading `+` kept; e-mail: lower-case. */
  value: string;
  use: TelecomUse;
  extension?: string;
}

export interface MultipleBirth {
  /** PID-24 Y/N. */
  indicator?: boolean;
  /** PID-25 birth order. */
  order?: number;
}

export interface Deceased {
  /** PID-29; null when sent as `""`. */
  date?: DateValue | null;
  /** PID-30 Y/N. */
  indicator?: boolean;
}

/** One source record: what one sender (assigning authority + MRN) says about a patient. */
export interface PatientRecord {
  /** Assigning authority of the MRN; falls back to MSH-4.1, then MSH-3.1, when PID-3 has none. */
  authority: string;
  /** The first PID-3 with type MR, else the first PID-3; absent when PID-3 is empty. */
  mrn?: string;
  /** Every PID-3 repetition, plus PID-2/PID-4 (old versions) and PID-19 (type SS, digits). */
  identifiers: Identifier[];
  /** PID-5 repetitions, then PID-9 aliases (type 'A'); null when PID-5 is `""`. */
  names: PersonName[] | null;
  mothersMaidenName?: Nullable<PersonName>;
  birthDate?: Nullable<DateValue>;
  sex?: Nullable<Sex>;
  addresses: Address[] | null;
  telecom: Telecom[] | null;
  /** PID-10 codes. */
  race?: Nullable<string[]>;
  /** PID-22 codes. */
  ethnicity?: Nullable<string[]>;
  /** PID-15 code. */
  language?: Nullable<string>;
  /** PID-16 code. */
  maritalStatus?: Nullable<string>;
  /** PID-18 patient account number. */
  accountNumber?: Nullable<string>;
  multipleBirth?: Nullable<MultipleBirth>;
  deceased?: Nullable<Deceased>;
}

export interface Location {
  pointOfCare?: string;
  room?: string;
  bed?: string;
  facility?: string;
  status?: string;
  building?: string;
  floor?: string;
  description?: string;
}

export interface Practitioner {
  id?: string;
  family?: string;
  given?: string;
  middle?: string;
  prefix?: string;
}

/** Encounter state derived from the trigger event and the discharge time. */
export type EncounterStatus = 'planned' | 'arrived' | 'in-progress' | 'finished' | 'cancelled';

export interface Encounter {
  /** PV1-19.1 */
  visitNumber?: string;
  /** PV1-2 (I, O, E, P, R, B, N, …). */
  class?: string;
  /** PV1-3 */
  location?: Location;
  /** PV1-6 */
  priorLocation?: Location;
  /** PV1-4 */
  admissionType?: string;
  /** PV1-7, first repetition. */
  attending?: Practitioner;
  /** PV1-10 */
  hospitalService?: string;
  /** PV1-18 */
  patientType?: string;
  /** PV1-44 */
  admitAt?: DateValue;
  /** PV1-45 */
  dischargeAt?: DateValue;
  /** PV1-36 */
  dischargeDisposition?: string;
  /** PV1-41 */
  accountStatus?: string;
  /** PV2-8 */
  expectedAdmitAt?: DateValue;
  /** PV2-9 */
  expectedDischargeAt?: DateValue;
  status?: EncounterStatus;
}

/** SN (structured numeric): `>^100`, `^182`, `^10^-^20`, `^1^:^128`. */
export interface StructuredNumeric {
  comparator?: string;
  num1?: number;
  separator?: string;
  num2?: number;
}

/** ED (encapsulated data). */
export interface EncapsulatedData {
  type?: string;
  subtype?: string;
  encoding?: string;
  data?: string;
}

/** An OBX-5 value, typed by OBX-2. */
export type ObservationValue =
  | { kind: 'number'; value: number }
  | { kind: 'text'; value: string }
  | ({ kind: 'coded' } & Coded)
  | ({ kind: 'structured-numeric' } & StructuredNumeric)
  | ({ kind: 'date' } & DateValue)
  | ({ kind: 'encapsulated' } & EncapsulatedData)
  /** Other value types, and NM/DT/TS values that do not parse: the decoded text as sent. */
  | { kind: 'unparsed'; value: string };

export interface ObservationResult {
  setId?: number;
  /** OBX-2 */
  valueType?: string;
  /** OBX-3 */
  code?: Coded;
  /** OBX-4 */
  subId?: string;
  /** First non-empty OBX-5 repetition. */
  value?: ObservationValue;
  /** Every non-empty OBX-5 repetition (same order). */
  values: ObservationValue[];
  /** OBX-6 */
  units?: Coded;
  /** OBX-7 */
  referenceRange?: string;
  /** OBX-8 repetitions. */
  abnormalFlags: string[];
  /** OBX-11 (F final, C corrected, P preliminary, X cannot be obtained, …). */
  status?: string;
  /** OBX-14 */
  observedAt?: DateValue;
  /** NTE-3 lines following this OBX. */
  notes: string[];
}

export interface OrderNumber {
  value: string;
  namespace?: string;
}

/** One OBR with the OBX and NTE segments that follow it. */
export interface OrderResult {
  /** OBR-2, else ORC-2. */
  placerOrderNumber?: OrderNumber;
  /** OBR-3, else ORC-3. */
  fillerOrderNumber?: OrderNumber;
  /** OBR-4 */
  testCode?: Coded;
  /** OBR-7 */
  observedAt?: DateValue;
  /** OBR-8 */
  observationEndAt?: DateValue;
  /** OBR-22 */
  resultedAt?: DateValue;
  /** OBR-25 */
  status?: string;
  /** NTE-3 lines directly after the OBR (before its first OBX). */
  notes: string[];
  observations: ObservationResult[];
}

/** MRG: the prior (retired) identity in a merge or move. */
export interface MergeInfo {
  /** Prior MRN (MRG-1, same rule as PID-3) and its authority. */
  priorMrn?: string;
  priorAuthority: string;
  /** Every MRG-1 repetition. */
  priorIdentifiers: Identifier[];
  /** MRG-3 */
  priorAccountNumber?: string;
  /** MRG-5 */
  priorVisitNumber?: string;
  /** MRG-6 */
  priorAlternateVisitId?: string;
  /** MRG-7 */
  priorName?: PersonName;
}

export interface MessageEvent {
  /** MSH-9.1 (ADT, ORU, …). */
  type: string;
  /** MSH-9.2, else EVN-1; '' when neither is sent. */
  trigger: string;
  /** MSH-9.3 */
  structure?: string;
  /** MSH-10; '' when missing. */
  messageControlId: string;
  /** EVN-2, else MSH-7. */
  occurredAt?: DateValue;
  sendingApplication?: string;
  sendingFacility?: string;
  version?: string;
}

/** One PID with the PV1/PV2 that follow it (ADT^A17 carries two). */
export interface PatientGroup {
  patient: PatientRecord;
  encounter?: Encounter;
}

export interface NormalizedMessage {
  event: MessageEvent;
  /** False for message types other than ADT and ORU: only `event` is filled. */
  supported: boolean;
  /** The first PID group's patient. */
  patient?: PatientRecord;
  /** Every PID group, when the message has more than one PID (ADT^A17 swap). */
  patients?: PatientGroup[];
  merge?: MergeInfo;
  /** The first PID group's encounter. */
  encounter?: Encounter;
  /** ORU: one entry per OBR. */
  results?: OrderResult[];
}
