import { type Hl7Message, type Hl7Segment } from '@engine/hl7';
import type {
  Address,
  Coded,
  EncapsulatedData,
  Encounter,
  EncounterStatus,
  Identifier,
  IdentifierSource,
  Location,
  MergeInfo,
  MessageEvent,
  NormalizedMessage,
  ObservationResult,
  ObservationValue,
  OrderNumber,
  OrderResult,
  PatientGroup,
  PatientRecord,
  PersonName,
  Practitioner,
  Telecom,
  TelecomUse,
} from './model';
import {
  isExplicitNull,
  normalizeCode,
  normalizeEmail,
  normalizeName,
  normalizePhone,
  normalizePostalCode,
  normalizeSex,
  normalizeSsn,
  parseHl7Date,
  parseNumber,
  parseYesNo,
  tidyText,
} from './normalize';
import { groupSegments, type OrderGrouping } from './segment-groups';

/** Tidied text at a segment path (`'3[2].4.1'`); undefined when empty or `""`. */
function text(seg: Hl7Segment, path: string): string | undefined {
  return tidyText(seg.get(path));
}

/** Number of repetitions of a field (0 when empty or absent). */
function reps(seg: Hl7Segment, field: number): number {
  return seg.getAll(field).length;
}

/** True when the whole field is the explicit null `""`. */
function nulled(seg: Hl7Segment, field: number): boolean {
  return isExplicitNull(seg.getRaw(field));
}

function compact<T extends object>(o: T): T | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return Object.keys(out).length === 0 ? undefined : out;
}

const SYSTEMS: Record<string, string> = {
  LN: 'LOINC',
  SCT: 'SNOMED CT',
  SNM: 'SNOMED',
  I9: 'ICD-9',
  I9C: 'ICD-9-CM',
  I9CDX: 'ICD-9-CM',
  I10: 'ICD-10',
  I10C: 'ICD-10-CM',
  UCUM: 'UCUM',
};

function codingSystem(value: string | undefined): string | undefined {
  return value === undefined ? undefined : (SYSTEMS[value.toUpperCase()] ?? value);
}

/** CE/CWE at `base` (e.g. `'3'` or `'5[2]'`): components 1-3, else the alternate 4-6. */
function coded(seg: Hl7Segment, base: string): Coded | undefined {
  const primary = compact({
    code: text(seg, `${base}.1`),
    display: text(seg, `${base}.2`),
    system: codingSystem(text(seg, `${base}.3`)),
  });
  return (
    primary ??
    compact({
      code: text(seg, `${base}.4`),
      display: text(seg, `${base}.5`),
      system: codingSystem(text(seg, `${base}.6`)),
    })
  );
}

/** Codes (component 1) of every repetition of a CE/CWE field. */
function codes(seg: Hl7Segment, field: number): string[] | null | undefined {
  if (nulled(seg, field)) {
    return null;
  }
  const out: string[] = [];
  for (let r = 1; r <= reps(seg, field); r++) {
    const c = normalizeCode(seg.get(`${field}[${r}].1`));
    if (c !== undefined) {
      out.push(c);
    }
  }
  return out.length > 0 ? out : undefined;
}

function firstCode(seg: Hl7Segment, field: number): string | null | undefined {
  return nulled(seg, field) ? null : normalizeCode(seg.get(`${field}.1`));
}

/** CX at field `f` repetition `r`. */
function cx(
  seg: Hl7Segment,
  f: number,
  r: number,
  source: IdentifierSource,
  defaultType = '',
): Identifier | undefined {
  const b = `${f}[${r}]`;
  const value = text(seg, `${b}.1.1`);
  if (value === undefined) {
    return undefined;
  }
  const id: Identifier = {
    value,
    authority: text(seg, `${b}.4.1`) ?? text(seg, `${b}.4.2`) ?? '',
    type: text(seg, `${b}.5.1`)?.toUpperCase() ?? defaultType,
    source,
  };
  const facility = text(seg, `${b}.6.1`) ?? text(seg, `${b}.6.2`);
  if (facility !== undefined) {
    id.assigningFacility = facility;
  }
  return id;
}

function cxList(seg: Hl7Segment, f: number, source: IdentifierSource): Identifier[] {
  const out: Identifier[] = [];
  for (let r = 1; r <= reps(seg, f); r++) {
    const id = cx(seg, f, r, source);
    if (id) {
      out.push(id);
    }
  }
  return out;
}

/** The MRN rule: the first identifier with type MR, else the first one. */
function pickMrn(ids: Identifier[]): Identifier | undefined {
  return ids.find((i) => i.type === 'MR') ?? ids[0];
}

/** XPN at `base` (`'5[1]'`); family is XPN-1.1 (FN surname). */
function xpn(seg: Hl7Segment, base: string, defaultType: string): PersonName | undefined {
  const parts = compact({
    family: normalizeName(seg.get(`${base}.1.1`)),
    given: normalizeName(seg.get(`${base}.2`)),
    middle: normalizeName(seg.get(`${base}.3`)),
    suffix: normalizeName(seg.get(`${base}.4`)),
    prefix: normalizeName(seg.get(`${base}.5`)),
  });
  if (!parts) {
    return undefined;
  }
  return { ...parts, type: text(seg, `${base}.7`)?.toUpperCase() ?? defaultType };
}

function names(seg: Hl7Segment, field: number, defaultType: string): PersonName[] {
  const out: PersonName[] = [];
  for (let r = 1; r <= reps(seg, field); r++) {
    const n = xpn(seg, `${field}[${r}]`, defaultType);
    if (n) {
      out.push(n);
    }
  }
  return out;
}

function xad(seg: Hl7Segment, base: string): Address | undefined {
  return compact({
    line1: text(seg, `${base}.1.1`),
    line2: text(seg, `${base}.2`),
    city: text(seg, `${base}.3`),
    state: text(seg, `${base}.4`)?.toUpperCase(),
    postalCode: normalizePostalCode(seg.get(`${base}.5`)),
    country: text(seg, `${base}.6`)?.toUpperCase(),
    type: text(seg, `${base}.7`)?.toUpperCase(),
    county: text(seg, `${base}.9`),
  });
}

const TELECOM_USE: Record<string, TelecomUse> = {
  PRN: 'home',
  ORN: 'other',
  WPN: 'work',
  VHN: 'other',
  ASN: 'other',
  EMR: 'emergency',
  NET: 'home',
  BPN: 'other',
  PRS: 'mobile',
};

/** XTN at `base`; `defaultUse` is 'home' for PID-13 and 'work' for PID-14. */
function xtn(seg: Hl7Segment, base: string, defaultUse: TelecomUse): Telecom | undefined {
  const useCode = text(seg, `${base}.2`)?.toUpperCase();
  const equipment = text(seg, `${base}.3`)?.toUpperCase();
  const first = text(seg, `${base}.1`);
  const emailText = text(seg, `${base}.4`) ?? (first?.includes('@') ? first : undefined);
  let use: TelecomUse = (useCode !== undefined ? TELECOM_USE[useCode] : undefined) ?? defaultUse;
  if (equipment === 'INTERNET' || equipment === 'X.400' || useCode === 'NET' || emailText) {
    const email = normalizeEmail(emailText);
    return email === undefined ? undefined : { system: 'email', value: email, use };
  }
  const number =
    normalizePhone(first) ??
    normalizePhone(text(seg, `${base}.12`)) ??
    normalizePhone(
      [text(seg, `${base}.5`), text(seg, `${base}.6`), text(seg, `${base}.7`)]
        .filter((p) => p !== undefined)
        .join(''),
    );
  if (number === undefined) {
    return undefined;
  }
  if (equipment === 'CP' || equipment === 'BP') {
    use = 'mobile';
  }
  const t: Telecom = { system: equipment === 'FX' ? 'fax' : 'phone', value: number, use };
  const ext = normalizePhone(text(seg, `${base}.8`));
  if (ext !== undefined) {
    t.extension = ext;
  }
  return t;
}

function telecoms(seg: Hl7Segment, field: number, defaultUse: TelecomUse): Telecom[] {
  const out: Telecom[] = [];
  for (let r = 1; r <= reps(seg, field); r++) {
    const t = xtn(seg, `${field}[${r}]`, defaultUse);
    if (t) {
      out.push(t);
    }
  }
  return out;
}

function date(seg: Hl7Segment, path: string): ReturnType<typeof parseHl7Date> {
  return parseHl7Date(seg.get(path));
}

function nullableDate(seg: Hl7Segment, field: number): ReturnType<typeof parseHl7Date> | null {
  return nulled(seg, field) ? null : date(seg, `${field}.1`);
}

/** PID → source record. `fallbackAuthority` is used when the MRN has no authority. */
export function patientFromPid(pid: Hl7Segment, fallbackAuthority = ''): PatientRecord {
  const pid3 = cxList(pid, 3, 'PID-3');
  const identifiers = [...pid3, ...cxList(pid, 2, 'PID-2'), ...cxList(pid, 4, 'PID-4')];
  for (let r = 1; r <= reps(pid, 19); r++) {
    const ssn = normalizeSsn(pid.get(`19[${r}]`));
    if (ssn !== undefined) {
      identifiers.push({ value: ssn, authority: 'SSA', type: 'SS', source: 'PID-19' });
    }
  }
  const mrn = pickMrn(pid3);
  const patient: PatientRecord = {
    authority: mrn?.authority || fallbackAuthority,
    identifiers,
    names: nulled(pid, 5) ? null : [...names(pid, 5, 'L'), ...names(pid, 9, 'A')],
    addresses: nulled(pid, 11) ? null : [],
    telecom: nulled(pid, 13) && nulled(pid, 14) ? null : [],
  };
  if (mrn) {
    patient.mrn = mrn.value;
  }
  if (patient.addresses) {
    for (let r = 1; r <= reps(pid, 11); r++) {
      const a = xad(pid, `11[${r}]`);
      if (a) {
        patient.addresses.push(a);
      }
    }
  }
  if (patient.telecom) {
    patient.telecom.push(...telecoms(pid, 13, 'home'), ...telecoms(pid, 14, 'work'));
  }
  const optional: Partial<PatientRecord> = {
    mothersMaidenName: nulled(pid, 6) ? null : xpn(pid, '6[1]', 'M'),
    birthDate: nullableDate(pid, 7),
    sex: nulled(pid, 8) ? null : normalizeSex(pid.get('8.1')),
    race: codes(pid, 10),
    language: firstCode(pid, 15),
    maritalStatus: firstCode(pid, 16),
    accountNumber: nulled(pid, 18) ? null : text(pid, '18.1'),
    ethnicity: codes(pid, 22),
    multipleBirth:
      nulled(pid, 24) && nulled(pid, 25)
        ? null
        : compact({
            indicator: parseYesNo(pid.get('24')),
            order: parseNumber(pid.get('25')),
          }),
    deceased:
      nulled(pid, 29) && nulled(pid, 30)
        ? null
        : compact({ date: nullableDate(pid, 29), indicator: parseYesNo(pid.get('30')) }),
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) {
      (patient as unknown as Record<string, unknown>)[k] = v;
    }
  }
  return patient;
}

function location(seg: Hl7Segment, f: number): Location | undefined {
  return compact({
    pointOfCare: text(seg, `${f}.1`),
    room: text(seg, `${f}.2`),
    bed: text(seg, `${f}.3`),
    facility: text(seg, `${f}.4.1`),
    status: text(seg, `${f}.5`),
    building: text(seg, `${f}.7`),
    floor: text(seg, `${f}.8`),
    description: text(seg, `${f}.9`),
  });
}

function practitioner(seg: Hl7Segment, base: string): Practitioner | undefined {
  return compact({
    id: text(seg, `${base}.1`),
    family: normalizeName(seg.get(`${base}.2.1`)),
    given: normalizeName(seg.get(`${base}.3`)),
    middle: normalizeName(seg.get(`${base}.4`)),
    prefix: normalizeName(seg.get(`${base}.6`)),
  });
}

function encounterStatus(trigger: string, discharged: boolean): EncounterStatus | undefined {
  switch (trigger) {
    case 'A03':
      return 'finished';
    case 'A11':
    case 'A27':
    case 'A38':
      return 'cancelled';
    case 'A05':
    case 'A14':
      return 'planned';
    case 'A04':
      return 'arrived';
    case 'A01':
    case 'A02':
    case 'A06':
    case 'A07':
    case 'A12':
    case 'A13':
    case 'A15':
    case 'A21':
    case 'A22':
      return 'in-progress';
    default:
      return discharged ? 'finished' : undefined;
  }
}

/** PV1 (+ PV2) → encounter; undefined when PV1 carries nothing. */
export function encounterFromPv1(
  pv1: Hl7Segment,
  pv2: Hl7Segment | undefined,
  trigger = '',
): Encounter | undefined {
  const e = compact<Encounter>({
    visitNumber: text(pv1, '19.1'),
    class: text(pv1, '2.1'),
    location: location(pv1, 3),
    priorLocation: location(pv1, 6),
    admissionType: text(pv1, '4.1'),
    attending: practitioner(pv1, '7[1]'),
    hospitalService: text(pv1, '10.1'),
    patientType: text(pv1, '18.1'),
    dischargeDisposition: text(pv1, '36.1'),
    accountStatus: text(pv1, '41.1'),
    admitAt: date(pv1, '44.1'),
    dischargeAt: date(pv1, '45[1].1'),
    expectedAdmitAt: pv2 ? date(pv2, '8.1') : undefined,
    expectedDischargeAt: pv2 ? date(pv2, '9.1') : undefined,
  });
  if (!e) {
    return undefined;
  }
  const status = encounterStatus(trigger, e.dischargeAt !== undefined);
  return status === undefined ? e : { ...e, status };
}

/** MRG → merge info. */
export function mergeFromMrg(mrg: Hl7Segment, fallbackAuthority = ''): MergeInfo {
  const priorIdentifiers = cxList(mrg, 1, 'MRG-1');
  const prior = pickMrn(priorIdentifiers);
  const info: MergeInfo = {
    priorAuthority: prior?.authority || fallbackAuthority,
    priorIdentifiers,
  };
  const rest = compact({
    priorMrn: prior?.value,
    priorAccountNumber: text(mrg, '3.1'),
    priorVisitNumber: text(mrg, '5.1'),
    priorAlternateVisitId: text(mrg, '6.1'),
    priorName: xpn(mrg, '7[1]', 'L'),
  });
  return { ...info, ...rest };
}

function orderNumber(seg: Hl7Segment | undefined, f: number): OrderNumber | undefined {
  if (!seg) {
    return undefined;
  }
  const value = text(seg, `${f}.1`);
  if (value === undefined) {
    return undefined;
  }
  const namespace = text(seg, `${f}.2`);
  return namespace === undefined ? { value } : { value, namespace };
}

/** One OBX-5 repetition typed by OBX-2. */
function obxValue(
  obx: Hl7Segment,
  r: number,
  valueType: string,
  escape: string,
): ObservationValue | undefined {
  const b = `5[${r}]`;
  const whole = obx.get(b);
  if (whole === undefined || whole.trim() === '' || isExplicitNull(whole)) {
    return undefined;
  }
  switch (valueType) {
    case 'NM': {
      const n = parseNumber(whole);
      return n === undefined ? { kind: 'unparsed', value: whole } : { kind: 'number', value: n };
    }
    case 'ST':
    case 'TX':
      return { kind: 'text', value: whole };
    case 'FT':
      return { kind: 'text', value: whole.split(`${escape}.br${escape}`).join('\n') };
    case 'CE':
    case 'CWE':
    case 'CNE': {
      const c = coded(obx, b);
      return c ? { kind: 'coded', ...c } : undefined;
    }
    case 'SN': {
      const sn = compact({
        comparator: text(obx, `${b}.1`),
        num1: parseNumber(obx.get(`${b}.2`)),
        separator: text(obx, `${b}.3`),
        num2: parseNumber(obx.get(`${b}.4`)),
      });
      return sn ? { kind: 'structured-numeric', ...sn } : { kind: 'unparsed', value: whole };
    }
    case 'DT':
    case 'TS':
    case 'DTM': {
      const d = date(obx, `${b}.1`);
      return d ? { kind: 'date', ...d } : { kind: 'unparsed', value: whole };
    }
    case 'ED': {
      const ed = compact<EncapsulatedData>({
        type: text(obx, `${b}.2`),
        subtype: text(obx, `${b}.3`),
        encoding: text(obx, `${b}.4`),
        data: obx.get(`${b}.5`)?.trim() || undefined,
      });
      return ed ? { kind: 'encapsulated', ...ed } : undefined;
    }
    default:
      return { kind: 'unparsed', value: whole };
  }
}

function observation(obx: Hl7Segment, escape: string): ObservationResult {
  const valueType = text(obx, '2.1')?.toUpperCase();
  const values: ObservationValue[] = [];
  for (let r = 1; r <= reps(obx, 5); r++) {
    const v = obxValue(obx, r, valueType ?? '', escape);
    if (v) {
      values.push(v);
    }
  }
  const abnormalFlags: string[] = [];
  for (let r = 1; r <= reps(obx, 8); r++) {
    const f = text(obx, `8[${r}].1`);
    if (f !== undefined) {
      abnormalFlags.push(f);
    }
  }
  const head = compact({
    setId: parseNumber(obx.get('1')),
    valueType,
    code: coded(obx, '3'),
    subId: text(obx, '4'),
    value: values[0],
    units: coded(obx, '6'),
    referenceRange: text(obx, '7'),
    status: text(obx, '11'),
    observedAt: date(obx, '14.1'),
  });
  return { ...head, values, abnormalFlags, notes: [] };
}

function order(obr: Hl7Segment | undefined, orc: Hl7Segment | undefined): OrderResult {
  const head = obr
    ? compact({
        placerOrderNumber: orderNumber(obr, 2) ?? orderNumber(orc, 2),
        fillerOrderNumber: orderNumber(obr, 3) ?? orderNumber(orc, 3),
        testCode: coded(obr, '4'),
        observedAt: date(obr, '7.1'),
        observationEndAt: date(obr, '8.1'),
        resultedAt: date(obr, '22.1'),
        status: text(obr, '25'),
      })
    : compact({ placerOrderNumber: orderNumber(orc, 2), fillerOrderNumber: orderNumber(orc, 3) });
  return { ...head, notes: [], observations: [] };
}

function noteText(nte: Hl7Segment, escape: string): string {
  const lines: string[] = [];
  for (let r = 1; r <= reps(nte, 3); r++) {
    const line = nte.get(`3[${r}]`);
    if (line !== undefined) {
      lines.push(line.split(`${escape}.br${escape}`).join('\n'));
    }
  }
  return lines.join('\n');
}

/**
 * ORU orders as `normalizeMessage` reads them: each OBR opens an `OrderResult`, OBX segments
 * join the current one (OBX before any OBR get an order without OBR data), an NTE attaches to
 * the OBX it follows, else to the OBR.
 */
const RESULT_ORDERS: OrderGrouping<OrderResult, ObservationResult> = {
  reports: true,
  observations: true,
  pidClosesOrder: false,
  order: (_msg, obr, orc) => order(obr, orc),
  observation: (msg, current, obx) => {
    const result = observation(obx, msg.delimiters.escape);
    current.observations.push(result);
    return result;
  },
  note: (msg, nte, current, obx) => {
    (obx ?? current).notes.push(noteText(nte, msg.delimiters.escape));
  },
};

function event(msg: Hl7Message): MessageEvent {
  const evn = msg.segment('EVN');
  const ev: MessageEvent = {
    type: tidyText(msg.messageType)?.toUpperCase() ?? '',
    trigger:
      tidyText(msg.triggerEvent)?.toUpperCase() ??
      (evn ? text(evn, '1')?.toUpperCase() : undefined) ??
      '',
    messageControlId: tidyText(msg.controlId) ?? '',
  };
  const rest = compact({
    structure: tidyText(msg.messageStructure),
    occurredAt: (evn ? date(evn, '2.1') : undefined) ?? parseHl7Date(msg.get('MSH-7.1')),
    sendingApplication: tidyText(msg.get('MSH-3.1')),
    sendingFacility: tidyText(msg.get('MSH-4.1')),
    version: tidyText(msg.version),
  });
  return { ...ev, ...rest };
}

/**
 * Normalizes an ADT or ORU message into the canonical model. Never throws on odd content:
 * unknown segments are ignored, unparseable values become undefined (or `unparsed`).
 *
 * - Every PID starts a patient group; the PV1/PV2 after it belong to it. `patient` and
 *   `encounter` are the first group's; `patients` lists every group when there are several
 *   (ADT^A17 swaps two patients' locations).
 * - MRG (A40/A34/A18/A30/A41/A42/A45/A47/…) → `merge` (first MRG only).
 * - ORU: each OBR opens an `OrderResult`; OBX segments join the current one; an NTE attaches to
 *   the OBX it follows, else to the OBR. OBX before any OBR get an order without OBR data.
 * - Other message types: only `event` is returned, with `supported: false`.
 */
export function normalizeMessage(msg: Hl7Message): NormalizedMessage {
  const ev = event(msg);
  const supported = ev.type === 'ADT' || ev.type === 'ORU';
  const out: NormalizedMessage = { event: ev, supported };
  if (!supported) {
    return out;
  }
  const fallbackAuthority = ev.sendingFacility ?? ev.sendingApplication ?? '';
  const { patients, orders, firstMrg } = groupSegments(
    msg,
    ev.type === 'ORU' ? RESULT_ORDERS : undefined,
  );
  if (firstMrg) {
    out.merge = mergeFromMrg(firstMrg, fallbackAuthority);
  }

  const patientGroups: PatientGroup[] = patients.map((g) => {
    const patient = patientFromPid(g.pid, fallbackAuthority);
    const encounter = g.pv1 ? encounterFromPv1(g.pv1, g.pv2, ev.trigger) : undefined;
    return encounter ? { patient, encounter } : { patient };
  });
  if (patientGroups.length > 0) {
    out.patient = patientGroups[0].patient;
    if (patientGroups[0].encounter) {
      out.encounter = patientGroups[0].encounter;
    }
  }
  if (patientGroups.length > 1) {
    out.patients = patientGroups;
  }
  if (ev.type === 'ORU') {
    out.results = orders;
  }
  return out;
}
