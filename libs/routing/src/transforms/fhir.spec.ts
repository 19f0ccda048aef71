import type {
  Bundle,
  BundleEntry,
  Coding,
  DiagnosticReport,
  Encounter,
  FhirResource,
  Observation,
  Patient,
} from 'fhir/r4';
import { isAdtOru, readManifest, sampleMessages } from '@engine/hl7/testing';
import type { RenderInput, RenderOptions, SourceEvent } from '../types';
import { IDENTIFIER_SYSTEMS_TABLE, fhirBundle, renderFhir } from './fhir';
import { codeSystemCodes, fhirIssues, loadFhirDefinitions, validateFhir } from './fhir-validate';
import { RENDER_OPTIONS } from './testing';

const manifest = readManifest();
const adtOru = manifest.filter(isAdtOru);
const others = manifest.filter((r) => !isAdtOru(r));

const OPTS: RenderOptions = { ...RENDER_OPTIONS, addEuid: false, application: 'ENGINE' };

const RECEIVED = new Date('2024-05-01T12:00:00.000Z');

function messageInput(
  raw: Buffer,
  deliveryId: string,
  euid: string | null = 'E000001',
): RenderInput {
  return {
    deliveryId,
    kind: 'message',
    message: { id: `m-${deliveryId}`, feed: 'test', raw, receivedAt: RECEIVED },
    euid,
  };
}

function sample(file: string, opts: RenderOptions = OPTS, euid: string | null = 'E000001'): Bundle {
  const [raw] = sampleMessages(file);
  const bundle = fhirBundle(messageInput(raw, `d-${file}`, euid), opts);
  if (bundle === null) {
    throw new Error(`${file}: no bundle`);
  }
  return bundle;
}

function resources<T extends FhirResource>(b: Bundle, type: T['resourceType']): T[] {
  return (b.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is T => r !== undefined && r.resourceType === type);
}

function byRef<T extends FhirResource>(b: Bundle, ref: string | undefined): T {
  const entry = (b.entry ?? []).find((e) => e.fullUrl === ref);
  if (entry?.resource === undefined) {
    throw new Error(`unresolved reference ${ref}`);
  }
  return entry.resource as T;
}

/** Every `reference` string anywhere in the value. */
function references(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) {
    v.forEach((x) => references(x, out));
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'reference' && typeof x === 'string') {
        out.push(x);
      } else {
        references(x, out);
      }
    }
  }
  return out;
}

/** Every Coding anywhere in the value. */
function codings(v: unknown, out: Coding[] = []): Coding[] {
  if (Array.isArray(v)) {
    v.forEach((x) => codings(x, out));
  } else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o.code === 'string' && typeof o.system === 'string' && !('resourceType' in o)) {
      out.push(o);
    }
    Object.values(o).forEach((x) => codings(x, out));
  }
  return out;
}

/** The bundle and each of its resources are valid R4; references resolve; fullUrls are unique. */
function expectValid(bundle: Bundle): void {
  validateFhir(bundle);
  for (const e of bundle.entry ?? []) {
    validateFhir(e.resource as FhirResource);
  }
  const urls = (bundle.entry ?? []).map((e: BundleEntry) => e.fullUrl);
  expect(new Set(urls).size).toBe(urls.length);
  for (const ref of references(bundle)) {
    expect(urls).toContain(ref);
  }
  expect(bundle.type).toBe('message');
  expect(bundle.entry?.[0].resource?.resourceType).toBe('MessageHeader');
}

beforeAll(() => loadFhirDefinitions());

describe('the validator (fhir-validate.ts)', () => {
  it('accepts a valid resource and reports structure, format and required-binding errors', () => {
    expect(
      fhirIssues({ resourceType: 'Patient', gender: 'female', birthDate: '1962-03-05' }),
    ).toEqual([]);
    const issues = fhirIssues({
      resourceType: 'Patient',
      birthDate: '1962-13-05',
      gender: 'F' as Patient['gender'],
      link: [{ other: { reference: 'urn:uuid:x' }, type: 'merged' as 'replaces' }],
    });
    expect(issues.join('\n')).toMatch(/Patient\.birthDate/);
    expect(issues.join('\n')).toMatch(/Patient\.gender: code 'F' is not in the required value set/);
    expect(issues.join('\n')).toMatch(/Patient\.link\[0\]\.type: code 'merged'/);
    expect(() =>
      validateFhir({ resourceType: 'Observation', code: { text: 'x' } } as Observation),
    ).toThrow(/Invalid FHIR R4 Observation \(1 issue\):\n {2}- Observation\.status/);
  });

  it('adds what medplum skips: R4 primitive regexes, data-type invariants, SimpleQuantity', () => {
    const issues = fhirIssues({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      effectiveDateTime: '2024-03-01T08:00:00', // a time needs a zone in R4
      valueQuantity: { value: 1, code: 'mg' }, // qty-3: a code needs a system
      referenceRange: [{ low: { value: 1, comparator: '<' } }],
    }).join('\n');
    expect(issues).toMatch(/Observation\.effectiveDateTime: invalid dateTime format/);
    expect(issues).toMatch(/Observation\.valueQuantity: constraint qty-3 not met/);
    expect(issues).toMatch(
      /Observation\.referenceRange\[0\]\.low: a SimpleQuantity has no comparator/,
    );
  });

  it('catches a broken sample bundle (dateTime without zone, wrong status)', () => {
    const b = sample('nhc_oru_r01_v251_nist_elr_lead.hl7');
    const obs = resources<Observation>(b, 'Observation')[0];
    obs.effectiveDateTime = '2008-08-15T10:30:00';
    (obs as { status: string }).status = 'done';
    expect(() => validateFhir(b)).toThrow(
      /entry\[\d\]\.resource\.status: code 'done'[\s\S]*effectiveDateTime: invalid dateTime format/,
    );
  });

  it('checks resources inside a Bundle', () => {
    const bad: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          resource: {
            resourceType: 'Encounter',
            status: 'done',
            class: { code: 'IMP' },
          } as unknown as Encounter,
        },
      ],
    };
    expect(fhirIssues(bad).join('\n')).toMatch(/Bundle\.entry\[0\]\.resource\.status: code 'done'/);
  });
});

describe('every ADT and ORU sample renders valid FHIR R4', () => {
  const rendered = new Map<string, Bundle | null>();

  it.each(adtOru)('$file ($messageType)', ({ file }) => {
    sampleMessages(file).forEach((raw, i) => {
      const bundle = fhirBundle(messageInput(raw, `d-${file}-${i}`), OPTS);
      rendered.set(`${file}#${i}`, bundle);
      if (bundle !== null) {
        expectValid(bundle);
      }
    });
  });

  it('renders every sample with a patient (null only without PID data)', () => {
    const empty = [...rendered].filter(([, b]) => b === null).map(([k]) => k);
    expect(empty.sort()).toEqual([
      'hl7apy_adt_a01_v26_msh_only.hl7#0', // MSH only
      'hl7dn_adt_a04_v27_blank_line.hl7#0', // MSH + EVN
      'hl7dn_adt_a04_v27_explicit_null.hl7#0', // MSH + EVN
      'hl7dn_adt_a04_v27_segment_name_only.hl7#0', // a bare 'PID'
      'hl7dn_adt_a04_v27_tab_chars.hl7#0', // MSH + EVN
      'hl7dn_adt_a08_v24_zsegment_invalid_escape.hl7#0', // ZZ1 only
      'nodehl7_adt_a01_v27_msh_only.hl7#0', // MSH only
    ]);
    const validated = [...rendered.values()].filter((b) => b !== null).length;
    expect(validated).toBe(rendered.size - 7);
    expect(validated).toBeGreaterThanOrEqual(25);
  });
});

describe('other message types (ORM, OML, OUL, DFT, SIU, RSP, …) render valid FHIR or null', () => {
  it.each(others)('$file ($messageType)', ({ file }) => {
    sampleMessages(file).forEach((raw, i) => {
      const bundle = fhirBundle(messageInput(raw, `d-${file}-${i}`), OPTS);
      if (bundle !== null) {
        expectValid(bundle);
      }
    });
  });
});

describe('PID → Patient', () => {
  it('maps gender, birthDate, names, identifiers with the EUID first', () => {
    const b = sample('hl7apy_adt_a01_v25_in1.hl7');
    const [patient] = resources<Patient>(b, 'Patient');
    expect(patient.gender).toBe('male');
    expect(patient.identifier?.[0]).toEqual({
      use: 'official',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PI' }] },
      system: 'urn:engine:euid:EUID',
      value: 'E000001',
    });
    expect(patient.identifier?.[1]).toEqual({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
      system: 'urn:engine:authority:HOSPITAL',
      value: '123-456-789',
    });
    expect(patient.name).toEqual([{ family: 'SURNAME', given: ['NAME', 'A'] }]);
    expect(patient.maritalStatus?.coding?.[0]).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus',
      code: 'M',
    });
  });

  it('no EUID identifier when the delivery has none', () => {
    const [patient] = resources<Patient>(
      sample('hl7apy_adt_a01_v25_in1.hl7', OPTS, null),
      'Patient',
    );
    expect(patient.identifier?.map((i) => i.system)).toEqual(['urn:engine:authority:HOSPITAL']);
  });

  it('dates: date precision for PID-7, an unparseable PID-7 is left out', () => {
    expect(resources<Patient>(sample('emap_adt_a40_v24_mrg.hl7'), 'Patient')[0].birthDate).toBe(
      '1999-09-09',
    );
    // PID-7 '196203520' is not a date
    const [eve] = resources<Patient>(sample('pyhl7_oru_r01_glucose_sn_fn.hl7'), 'Patient');
    expect(eve.birthDate).toBeUndefined();
    expect(eve.gender).toBe('female');
    expect(eve.extension).toEqual([
      {
        url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName',
        valueString: 'JONES',
      },
    ]);
  });

  it('decodes v2 escapes and keeps non-ASCII text (ISO-8859-1 sample)', () => {
    const [smith] = resources<Patient>(sample('hl7dn_orm_o01_v23_all_escapes.hl7'), 'Patient');
    expect(smith.name?.[0].family).toBe('Smith|^~\\&');
    const [dutch] = resources<Patient>(
      sample('nodehl7_adt_a08_v24_dutch_8859_glued_segments.hl7'),
      'Patient',
    );
    expect(dutch.name?.[0]).toEqual({
      use: 'official',
      family: 'van Testpatiënt-van het Hek',
      given: ['Jeanet', 'L', 'M', 'G'],
    });
    expect(dutch.name?.[1]).toEqual({ use: 'nickname', given: ['Jannie'] });
    expect(dutch.address?.[0]).toMatchObject({ type: 'postal', city: 'Groningen', country: 'NL' });
  });

  it('identifier systems: the fhir-identifier-systems table wins, OIDs become urn:oid', () => {
    const opts: RenderOptions = {
      ...OPTS,
      tables: {
        [IDENTIFIER_SYSTEMS_TABLE]: {
          MRENTR: 'urn:oid:1.2.826.0.1.1',
          EUID: 'https://mpi.example.org/euid',
        },
      },
    };
    const [patient] = resources<Patient>(sample('emap_adt_a40_v24_mrg.hl7', opts), 'Patient');
    expect(patient.identifier?.map((i) => i.system)).toEqual([
      'https://mpi.example.org/euid',
      'urn:oid:1.2.826.0.1.1',
      'urn:engine:authority:NHS',
    ]);
    const oid = fhirBundle(
      messageInput(
        Buffer.from('MSH|^~\\&|A|F|||20240101||ADT^A08|1|P|2.5\rPID|||42^^^&1.2.3.4&ISO^MR\r'),
        'oid',
      ),
      OPTS,
    ) as Bundle;
    expect(resources<Patient>(oid, 'Patient')[0].identifier?.[1].system).toBe('urn:oid:1.2.3.4');
  });

  it('PID-8 follows the IG table: A and N → other, unknown codes → unknown', () => {
    const genders = ['M', 'F', 'O', 'U', 'A', 'N', 'Z'].map((sex) => {
      const raw = Buffer.from(
        `MSH|^~\\&|A|F|||20240101||ADT^A08|1|P|2.5\rPID|||1^^^H^MR||DOE^JO||19800101|${sex}\r`,
      );
      return resources<Patient>(fhirBundle(messageInput(raw, sex), OPTS) as Bundle, 'Patient')[0]
        .gender;
    });
    expect(genders).toEqual(['male', 'female', 'other', 'unknown', 'other', 'other', 'unknown']);
  });
});

describe('merges and links → Patient.link', () => {
  it('A40: the survivor replaces the MRG-1 patient, which is inactive and replaced-by', () => {
    const b = sample('emap_adt_a40_v24_mrg.hl7');
    const [survivor, retired] = resources<Patient>(b, 'Patient');
    expect(survivor.link).toHaveLength(1);
    expect(survivor.link?.[0].type).toBe('replaces');
    expect(byRef<Patient>(b, survivor.link?.[0].other.reference)).toBe(retired);
    expect(retired.active).toBe(false);
    expect(retired.identifier).toEqual([
      { system: 'urn:engine:authority:MRENTR', value: '40800000' },
    ]);
    expect(retired.link).toEqual([
      { other: { reference: b.entry?.[1].fullUrl }, type: 'replaced-by' },
    ]);
    expect(survivor.active).toBeUndefined();
    expect(b.entry?.[0].resource).toMatchObject({
      resourceType: 'MessageHeader',
      eventCoding: { system: 'http://terminology.hl7.org/CodeSystem/v2-0003', code: 'A40' },
    });
  });

  it('A47 (identifier change) links too; A45 (move visit) does not', () => {
    const a47 = resources<Patient>(sample('emap_adt_a47_v24_mrg.hl7'), 'Patient');
    expect(a47.map((p) => p.link?.[0].type)).toEqual(['replaces', 'replaced-by']);
    const a45 = resources<Patient>(sample('emap_adt_a45_v24_move_visit_mrg.hl7'), 'Patient');
    expect(a45).toHaveLength(1);
    expect(a45[0].link).toBeUndefined();
  });

  it('A24 links the two patients both ways (seealso)', () => {
    const raw = Buffer.from(
      'MSH|^~\\&|A|F|||20240101||ADT^A24|1|P|2.5\r' +
        'PID|||1^^^H^MR||DOE^JO\rPID|||2^^^H^MR||DOE^JOE\r',
    );
    const b = fhirBundle(messageInput(raw, 'a24'), OPTS) as Bundle;
    expectValid(b);
    const [a, c] = resources<Patient>(b, 'Patient');
    expect(byRef<Patient>(b, a.link?.[0].other.reference)).toBe(c);
    expect(byRef<Patient>(b, c.link?.[0].other.reference)).toBe(a);
    expect([a.link?.[0].type, c.link?.[0].type]).toEqual(['seealso', 'seealso']);
  });
});

describe('PV1 → Encounter', () => {
  const encounter = (file: string): Encounter => {
    const b = sample(file);
    const [e] = resources<Encounter>(b, 'Encounter');
    expect(byRef<Patient>(b, e.subject?.reference).resourceType).toBe('Patient');
    return e;
  };

  it('class from PV1-2 (v3 ActCode) and status from the trigger', () => {
    expect(encounter('hl7apy_adt_a01_v25_in1.hl7')).toMatchObject({
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    });
    expect(encounter('medplum_adt_a04_epic_reps.hl7')).toMatchObject({
      status: 'planned', // the IG's table 0003 map: A04 (register) → planned
      class: { code: 'AMB' },
    });
    expect(encounter('emap_adt_a11_v24_xcn_reps.hl7')).toMatchObject({
      status: 'cancelled',
      class: { code: 'AMB' },
    });
    // PV1-2 'N' has no ActCode: the v2 code is kept (extensible binding)
    expect(encounter('emap_adt_a29_v24_delete_person.hl7')).toMatchObject({
      status: 'unknown',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v2-0004', code: 'N' },
    });
  });

  it('A02: visit number, current and prior location', () => {
    const e = encounter('emap_adt_a02_v24_bare_pd1.hl7');
    expect(e.identifier?.[0]).toMatchObject({
      value: '123412341234',
      type: { coding: [{ code: 'VN' }] },
    });
    expect(e.location?.map((l) => l.status)).toEqual(['active', 'completed']);
    expect(e.period?.start).toBe('2012-10-17'); // no offset anywhere in the message: date only
  });
});

describe('ORU → DiagnosticReport + Observation', () => {
  it('NIST lead: NM with UCUM unit, interpretation, statuses, dates with offset', () => {
    const b = sample('nhc_oru_r01_v251_nist_elr_lead.hl7');
    const [report] = resources<DiagnosticReport>(b, 'DiagnosticReport');
    const [patient] = resources<Patient>(b, 'Patient');
    expect(report.status).toBe('final');
    expect(report.code.coding?.[0]).toEqual({
      system: 'http://loinc.org',
      code: '10368-9',
      display: 'Lead BldC-mCnc',
    });
    expect(report.effectiveDateTime).toBe('2008-08-15T10:30:00-07:00');
    expect(report.issued).toBe('2008-08-18T18:00:00-07:00');
    expect(report.result).toHaveLength(1);
    const obs = byRef<Observation>(b, report.result?.[0].reference);
    expect(obs.resourceType).toBe('Observation');
    expect(obs.valueQuantity).toEqual({
      value: 50,
      unit: 'ug/dL',
      system: 'http://unitsofmeasure.org',
      code: 'ug/dL',
    });
    expect(obs.status).toBe('final');
    expect(obs.interpretation?.[0].coding?.[0]).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
      code: 'H',
    });
    expect(obs.referenceRange?.[0].text).toMatch(/^<9 mcg\/dL: Acceptable/);
    expect(obs.subject?.reference).toBe(b.entry?.find((e) => e.resource === patient)?.fullUrl);
    expect(patient.identifier?.[1].system).toBe('urn:engine:authority:MPI');
  });

  it('ELR: CWE and DT values, corrected status, MSH-7 as Bundle.timestamp', () => {
    const b = sample('cdcrs_oru_r01_v251_utf8_aoe.hl7');
    expect(b.timestamp).toBe('2021-06-08T14:59:37.746-04:00');
    const [report] = resources<DiagnosticReport>(b, 'DiagnosticReport');
    expect(report.status).toBe('corrected');
    const obs = resources<Observation>(b, 'Observation');
    expect(obs).toHaveLength(6);
    expect(report.result?.map((r) => byRef<Observation>(b, r.reference))).toEqual(obs);
    expect(obs[0].status).toBe('corrected');
    expect(obs[0].valueCodeableConcept?.coding?.[0]).toMatchObject({
      system: 'http://snomed.info/sct',
      code: '840539006',
    });
    expect(obs[1].valueDateTime).toBe('2021-06-06');
    expect(obs[2].valueCodeableConcept?.coding?.[0]).toMatchObject({
      system: 'http://terminology.hl7.org/CodeSystem/v2-0136',
      code: 'UNK',
    });
  });

  it('SN value → valueQuantity; a reference range that is not low-high stays text', () => {
    const b = sample('pyhl7_oru_r01_glucose_sn_fn.hl7');
    const [sn] = resources<Observation>(b, 'Observation');
    expect(sn.valueQuantity).toEqual({
      value: 182,
      unit: 'mg/dl',
      system: 'http://unitsofmeasure.org',
      code: 'mg/dl',
    });
    expect(sn.referenceRange).toEqual([{ text: '70_105' }]);
  });

  it('FT values → valueString; NTE → Observation.note', () => {
    const ft = resources<Observation>(sample('rubyhl7_oru_r03_no_version_ft.hl7'), 'Observation');
    expect(ft.map((o) => o.valueString)).toContain('GRAM POSITIVE COCCI IN GROUPS');
    const lis = resources<Observation>(
      sample('openlis_oru_r01_v22_split_pid_zps.hl7'),
      'Observation',
    );
    expect(lis[1].note).toEqual([
      { text: 'Result: NEGATIVE by EIA screen.' },
      { text: 'No antibodies to HIV-1 detected.' },
    ]);
  });

  it('value types, ranges, flags and times (synthetic ORU)', () => {
    const raw = Buffer.from(
      [
        'MSH|^~\\&|LAB|FAC|||20240301101500+0100||ORU^R01|C1|P|2.5.1',
        'PID|||77^^^LAB^MR||Roe^Ann||19800102083000|F',
        'OBR|1|P1^ORD|F1^LAB|24331-1^Lipid panel^LN|||202403010800|||||||||||||||202403010930+0100|||P',
        'OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L^^UCUM|3.5-5.0|H|||F|||202403010815',
        'OBX|2|NM|2571-8^Triglyceride^LN||<0.5|mmol/L|<1.7|N|||C',
        'OBX|3|SN|X1^Ratio^L||^1^:^128||||||P',
        'OBX|4|SN|X2^Range^L||^10^-^20|g/L|||||F',
        'OBX|5|SN|X3^Greater^L||>^100|U/L||LL~XYZ|||X',
        'OBX|6|TX|X4^Comment^L||line one\\.br\\line two~second||||||D',
        'OBX|7|DTM|X5^When^L||20240229231500-0500||||||F',
        'OBX|8|CWE|X6^Answer^L||Y^Yes^HL70136||||||W',
        'OBX|9|ED|X7^Doc^L||^TEXT^^Base64^SGk=||||||I',
        'OBX|10|NM|X8^Nothing^L||""||||||F',
        'NTE|1||a note',
      ].join('\r') + '\r',
    );
    const b = fhirBundle(messageInput(raw, 'syn'), OPTS) as Bundle;
    expectValid(b);
    const [patient] = resources<Patient>(b, 'Patient');
    expect(patient.birthDate).toBe('1980-01-02');
    expect(patient._birthDate?.extension?.[0]).toEqual({
      url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
      valueDateTime: '1980-01-02T08:30:00+01:00', // no offset of its own: MSH-7's
    });
    const [report] = resources<DiagnosticReport>(b, 'DiagnosticReport');
    expect(report).toMatchObject({
      status: 'preliminary',
      effectiveDateTime: '2024-03-01T08:00:00+01:00',
      issued: '2024-03-01T09:30:00+01:00',
    });
    expect(report.identifier?.map((i) => [i.type?.coding?.[0].code, i.value, i.system])).toEqual([
      ['PLAC', 'P1', 'urn:engine:authority:ORD'],
      ['FILL', 'F1', 'urn:engine:authority:LAB'],
    ]);
    const o = resources<Observation>(b, 'Observation');
    expect(o).toHaveLength(10);
    expect(o[0]).toMatchObject({
      status: 'final',
      effectiveDateTime: '2024-03-01T08:15:00+01:00',
      valueQuantity: {
        value: 5.2,
        unit: 'mmol/L',
        system: 'http://unitsofmeasure.org',
        code: 'mmol/L',
      },
      referenceRange: [
        {
          low: { value: 3.5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
          high: { value: 5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
        },
      ],
    });
    expect(o[1]).toMatchObject({
      status: 'corrected',
      effectiveDateTime: '2024-03-01T08:00:00+01:00', // OBR-7 when OBX-14 is empty
      valueQuantity: { value: 0.5, comparator: '<', code: 'mmol/L' },
      referenceRange: [{ high: { value: 1.7 }, text: '<1.7' }],
      interpretation: [{ coding: [{ code: 'N' }] }],
    });
    expect(o[2]).toMatchObject({
      status: 'preliminary',
      valueRatio: { numerator: { value: 1 }, denominator: { value: 128 } },
    });
    expect(o[3].valueRange).toEqual({
      low: { value: 10, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
      high: { value: 20, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    });
    expect(o[4]).toMatchObject({
      status: 'cancelled',
      valueQuantity: { value: 100, comparator: '>' },
      interpretation: [{ coding: [{ code: 'LL' }] }, { text: 'XYZ' }],
    });
    expect(o[5]).toMatchObject({
      status: 'entered-in-error',
      valueString: 'line one\nline two\nsecond',
    });
    expect(o[6].valueDateTime).toBe('2024-02-29T23:15:00-05:00');
    expect(o[7].valueCodeableConcept?.coding?.[0]).toMatchObject({ code: 'Y', display: 'Yes' });
    expect(o[8]).toMatchObject({ status: 'registered', valueString: '^TEXT^^Base64^SGk=' });
    expect(o[9]).toMatchObject({ status: 'final', note: [{ text: 'a note' }] });
    expect(o[9]).not.toHaveProperty('valueQuantity');
    expect(report.result?.map((r) => byRef<Observation>(b, r.reference))).toEqual(o);
  });

  it('a time without any known offset is reduced to its date', () => {
    const raw = Buffer.from(
      'MSH|^~\\&|LAB|FAC|||20240301101500||ORU^R01|C1|P|2.5.1\r' +
        'PID|||77^^^LAB^MR||Roe^Ann||19800102083000|F\r' +
        'OBR|1||F1|X^Y^L|||202403010800\rOBX|1|NM|X^Y^L||1||||||F|||202403010815\r',
    );
    const b = fhirBundle(messageInput(raw, 'tz'), OPTS) as Bundle;
    expectValid(b);
    expect(resources<Observation>(b, 'Observation')[0].effectiveDateTime).toBe('2024-03-01');
    expect(resources<Patient>(b, 'Patient')[0]._birthDate).toBeUndefined();
    expect(b.timestamp).toBe(RECEIVED.toISOString());
  });
});

describe('output', () => {
  it('is deterministic: same input, same bytes; ids are name-based UUIDs of the delivery', () => {
    for (const { file } of adtOru) {
      for (const [i, raw] of sampleMessages(file).entries()) {
        const one = renderFhir(messageInput(raw, `d-${i}`), OPTS);
        const two = renderFhir(messageInput(Buffer.from(raw), `d-${i}`), OPTS);
        if (one === null) {
          expect(two).toBeNull();
        } else {
          expect(two?.body.equals(one.body)).toBe(true);
        }
      }
    }
    const a = sample('emap_adt_a40_v24_mrg.hl7');
    const [raw] = sampleMessages('emap_adt_a40_v24_mrg.hl7');
    const other = fhirBundle(messageInput(raw, 'another-delivery'), OPTS) as Bundle;
    const urls = (b: Bundle) => (b.entry ?? []).map((e) => e.fullUrl ?? '');
    for (const u of [...urls(a), ...urls(other)]) {
      expect(u).toMatch(
        /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    }
    expect(urls(other).some((u) => urls(a).includes(u))).toBe(false);
    expect(a.entry?.every((e) => e.fullUrl === `urn:uuid:${e.resource?.id}`)).toBe(true);
  });

  it('renderFhir: application/fhir+json, extension json, body is the Bundle', () => {
    const [raw] = sampleMessages('hl7apy_adt_a01_v25_in1.hl7');
    const input = messageInput(raw, 'r1');
    const out = renderFhir(input, OPTS);
    expect(out?.contentType).toBe('application/fhir+json');
    expect(out?.extension).toBe('json');
    expect(out?.controlId).toBeUndefined();
    expect(JSON.parse(out?.body.toString('utf8') ?? '')).toEqual(fhirBundle(input, OPTS));
    expect(renderFhir({ deliveryId: 'x', kind: 'message', euid: null }, OPTS)).toBeNull();
  });

  it('every code of the v2 tables it maps (0203, 0078, 0002, 0004, 0001) gives valid FHIR', () => {
    const table = (t: string): string[] => [
      ...(codeSystemCodes(`http://terminology.hl7.org/CodeSystem/v2-${t}`) ?? []),
    ];
    expect(table('0203').length).toBeGreaterThan(100);
    const esc = (c: string) => c.replace(/\\/g, '\\E\\').replace(/&/g, '\\T\\');
    const ids = [...table('0203'), 'MEDREC'].map((t, i) => `${i}^^^H^${esc(t)}`).join('~');
    const flags = [...table('0078'), 'XYZ'].map(esc).join('~');
    const messages = [...table('0002'), 'Q'].map((marital, i) => {
      const patientClass = [...table('0004'), 'A'][i % 10];
      const sex = [...table('0001'), 'Z'][i % 7];
      return Buffer.from(
        `MSH|^~\\&|A|F|||20240101||ORU^R01|${i}|P|2.5\r` +
          `PID|||${ids}||DOE^JO||19800101|${sex}||||||||${marital}\r` +
          `PV1||${patientClass}\rOBR|1||F1|X^Y^L\rOBX|1|NM|X^Y^L||1|||${flags}|||F\r`,
      );
    });
    let checked = 0;
    for (const [i, raw] of messages.entries()) {
      const b = fhirBundle(messageInput(raw, `t-${i}`), OPTS) as Bundle;
      expectValid(b);
      for (const c of codings(b)) {
        const codes = codeSystemCodes(c.system ?? '');
        if (codes !== undefined) {
          expect([c.system, c.code, codes.has(c.code ?? '')]).toEqual([c.system, c.code, true]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('codes the engine assigns exist in their HL7 code systems', () => {
    const checked = [
      'http://terminology.hl7.org/CodeSystem/v2-0203',
      'http://terminology.hl7.org/CodeSystem/v2-0003',
      'http://terminology.hl7.org/CodeSystem/v2-0002',
      'http://terminology.hl7.org/CodeSystem/v2-0004',
      'http://terminology.hl7.org/CodeSystem/v3-ActCode',
      'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus',
      'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
      'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
      'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
      'http://terminology.hl7.org/CodeSystem/data-absent-reason',
    ];
    let seen = 0;
    for (const { file } of manifest) {
      for (const [i, raw] of sampleMessages(file).entries()) {
        const b = fhirBundle(messageInput(raw, `c-${i}`), OPTS);
        for (const c of codings(b)) {
          if (checked.includes(c.system ?? '')) {
            const codes = codeSystemCodes(c.system ?? '');
            expect(codes).toBeDefined();
            expect([c.system, c.code, codes?.has(c.code ?? '')]).toEqual([c.system, c.code, true]);
            seen++;
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(50);
  });
});

describe('MPI events', () => {
  const golden = {
    name: { family: 'DOE', given: 'JANE', middle: 'Q', type: 'L' },
    birthDate: { value: '1980-02-03', precision: 'day' },
    sex: 'F',
    address: { line1: '1 MAIN ST', city: 'SPRINGFIELD', postalCode: '12345', type: 'H' },
    telecom: [
      { system: 'phone', value: '5551234', use: 'home' },
      { system: 'email', value: 'jane@example.org', use: 'home' },
    ],
    ssn: '123456789',
    maritalStatus: 'M',
    language: 'en',
    multipleBirth: { indicator: true, order: 2 },
    deceased: { indicator: false },
  };

  function event(type: string, payload: Record<string, unknown>, euid = 'E1'): RenderInput {
    const ev: SourceEvent = {
      key: `k-${type}`,
      type,
      euid,
      messageId: null,
      payload,
      createdAt: new Date('2024-06-01T08:00:00.000Z'),
    };
    return { deliveryId: `ev-${type}`, kind: 'event', event: ev, euid: null };
  }

  function render(input: RenderInput): Bundle {
    const b = fhirBundle(input, OPTS);
    if (b === null) {
      throw new Error('no bundle');
    }
    expectValid(b);
    return b;
  }

  it.each(['patient.created', 'patient.updated'])('%s → Patient from the golden record', (type) => {
    const b = render(
      event(type, {
        euid: 'E1',
        golden,
        records: [
          { authority: 'HOSP', mrn: 'M1' },
          { authority: '2.16.840.1.113883.19.5', mrn: 'M2' },
        ],
        messageId: 'm1',
        trigger: 'A04',
      }),
    );
    expect(b.timestamp).toBe('2024-06-01T08:00:00.000Z');
    expect(b.entry?.[0].resource).toMatchObject({
      eventCoding: { system: 'urn:engine:event-type', code: type },
    });
    const [p] = resources<Patient>(b, 'Patient');
    expect(p.identifier?.map((i) => [i.system, i.value])).toEqual([
      ['urn:engine:euid:EUID', 'E1'],
      ['urn:engine:authority:HOSP', 'M1'],
      ['urn:oid:2.16.840.1.113883.19.5', 'M2'],
      ['http://hl7.org/fhir/sid/us-ssn', '123456789'],
    ]);
    expect(p).toMatchObject({
      name: [{ use: 'official', family: 'DOE', given: ['JANE', 'Q'] }],
      gender: 'female',
      birthDate: '1980-02-03',
      address: [{ use: 'home', line: ['1 MAIN ST'], city: 'SPRINGFIELD', postalCode: '12345' }],
      telecom: [
        { system: 'phone', value: '5551234', use: 'home' },
        { system: 'email', value: 'jane@example.org', use: 'home' },
      ],
      multipleBirthInteger: 2,
      deceasedBoolean: false,
      communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } }],
    });
  });

  it('patient.merged from a message: survivor replaces retired (inactive, replaced-by)', () => {
    const b = render(
      event('patient.merged', {
        euid: 'E1',
        retiredEuid: 'E2',
        survivor: { authority: 'HOSP', mrn: 'M1' },
        retired: { authority: 'HOSP', mrn: 'M0' },
        messageId: 'm1',
        trigger: 'A40',
      }),
    );
    const [survivor, retired] = resources<Patient>(b, 'Patient');
    expect(survivor.identifier?.map((i) => i.value)).toEqual(['E1', 'M1']);
    expect(retired.identifier?.map((i) => i.value)).toEqual(['E2', 'M0']);
    expect(survivor.link).toEqual([
      { other: { reference: b.entry?.[2].fullUrl }, type: 'replaces' },
    ]);
    expect(retired).toMatchObject({ active: false });
    expect(retired.link).toEqual([
      { other: { reference: b.entry?.[1].fullUrl }, type: 'replaced-by' },
    ]);
  });

  it('patient.merged from the worklist: golden + moved records on the survivor', () => {
    const b = render(
      event('patient.merged', {
        euid: 'E1',
        retiredEuid: 'E2',
        golden,
        records: [{ authority: 'LAB', mrn: 'L9' }],
        taskId: 't1',
        actor: 'alice',
        reason: 'same person',
      }),
    );
    const [survivor, retired] = resources<Patient>(b, 'Patient');
    expect(survivor.identifier?.map((i) => i.value)).toEqual(['E1', 'L9', '123456789']);
    expect(survivor.gender).toBe('female');
    expect(retired.identifier?.map((i) => i.value)).toEqual(['E2']);
    expect(retired.active).toBe(false);
    expect(survivor.link?.[0].type).toBe('replaces');
  });

  it('patient.merged inside one person (no retiredEuid): the retired record', () => {
    const b = render(
      event('patient.merged', {
        euid: 'E1',
        survivor: { authority: 'HOSP', mrn: 'M1' },
        retired: { authority: 'HOSP', mrn: 'M0' },
        messageId: 'm1',
        trigger: 'A40',
      }),
    );
    const [, retired] = resources<Patient>(b, 'Patient');
    expect(retired.identifier?.map((i) => i.value)).toEqual(['M0']);
  });

  it('patient.linked (message and worklist shapes) → seealso both ways', () => {
    const fromMessage = render(
      event('patient.linked', {
        euid: 'E1',
        linkedEuid: 'E3',
        records: [
          { authority: 'HOSP', mrn: 'M1' },
          { authority: 'CLINIC', mrn: 'C7' },
        ],
        messageId: 'm2',
      }),
    );
    const fromWorklist = render(
      event('patient.linked', {
        euid: 'E1',
        linkedEuid: 'E3',
        record: { authority: 'CLINIC', mrn: 'C7' },
        golden,
        taskId: 't2',
        actor: 'bob',
      }),
    );
    for (const b of [fromMessage, fromWorklist]) {
      const [target, linked] = resources<Patient>(b, 'Patient');
      expect(byRef<Patient>(b, target.link?.[0].other.reference)).toBe(linked);
      expect(byRef<Patient>(b, linked.link?.[0].other.reference)).toBe(target);
      expect([target.link?.[0].type, linked.link?.[0].type]).toEqual(['seealso', 'seealso']);
      expect(linked.identifier?.map((i) => i.value)).toEqual(['E3']);
    }
    expect(resources<Patient>(fromMessage, 'Patient')[0].identifier?.map((i) => i.value)).toEqual([
      'E1',
      'M1',
      'C7',
    ]);
  });

  it('other event types → null; the same event renders the same bytes', () => {
    for (const type of [
      'patient.deleted',
      'encounter.created',
      'result.created',
      'duplicate.suspected',
    ]) {
      expect(renderFhir(event(type, { euid: 'E1' }), OPTS)).toBeNull();
    }
    expect(renderFhir({ deliveryId: 'x', kind: 'event', euid: null }, OPTS)).toBeNull();
    const input = event('patient.updated', { euid: 'E1', golden, records: [] });
    expect(
      renderFhir(input, OPTS)?.body.equals(renderFhir(input, OPTS)?.body ?? Buffer.alloc(0)),
    ).toBe(true);
  });
});
