import { parseMessage } from '@engine/hl7';
import { isAdtOru, readManifest, sampleMessages } from '@engine/hl7/testing';
import { type NormalizedMessage, type ObservationValue, normalizeMessage } from './index';

const adtOru = readManifest().filter(isAdtOru);

function load(file: string): NormalizedMessage[] {
  return sampleMessages(file).map((p) => normalizeMessage(parseMessage(p)));
}

function one(file: string): NormalizedMessage {
  const all = load(file);
  expect(all).toHaveLength(1);
  return all[0];
}

describe('every ADT and ORU sample normalizes', () => {
  it('finds the ADT/ORU samples', () => {
    expect(adtOru.length).toBeGreaterThanOrEqual(25);
  });

  it.each(adtOru)('$file ($messageType)', ({ file, messageType }) => {
    for (const n of load(file)) {
      expect(n.supported).toBe(true);
      expect(n.event.type).toBe(messageType.split('^')[0]);
      if (n.event.type === 'ORU') {
        expect(Array.isArray(n.results)).toBe(true);
      }
      for (const p of n.patients?.map((g) => g.patient) ?? (n.patient ? [n.patient] : [])) {
        expect(Array.isArray(p.identifiers)).toBe(true);
        expect(typeof p.authority).toBe('string');
      }
    }
  });

  it('other message types only carry the event (OUL^R22 with 13 OBX is skipped)', () => {
    const n = one('medplum_oul_r22_subfields_13obx.hl7');
    expect(n.supported).toBe(false);
    expect(n.event.type).toBe('OUL');
    expect(n.patient).toBeUndefined();
    expect(n.results).toBeUndefined();
  });
});

describe('ADT spot checks', () => {
  it('A40 merge: PID-3 with repetitions and authorities, MRG-1 prior id', () => {
    const n = one('emap_adt_a40_v24_mrg.hl7');
    expect(n.event).toMatchObject({
      type: 'ADT',
      trigger: 'A40',
      messageControlId: 'PPPPP111111111111111',
      occurredAt: { value: '2012-07-17T15:25', precision: 'minute' },
    });
    expect(n.patient?.mrn).toBe('40800001');
    expect(n.patient?.authority).toBe('MRENTR');
    expect(n.patient?.identifiers).toEqual([
      { value: '40800001', authority: 'MRENTR', type: 'MEDREC', source: 'PID-3' },
      { value: '9999999999', authority: 'NHS', type: 'HN', source: 'PID-3' },
    ]);
    expect(n.patient?.names).toEqual([
      { family: 'TEST-CHU', given: 'OPCANCEL', prefix: 'MR', type: 'L' },
    ]);
    expect(n.patient?.birthDate).toEqual({ value: '1999-09-09T03:00', precision: 'minute' });
    expect(n.patient?.sex).toBe('M');
    expect(n.patient?.deceased).toEqual({ indicator: false });
    expect(n.merge).toMatchObject({ priorMrn: '40800000', priorAuthority: 'MRENTR' });
  });

  it('A45: MRG-3 prior account and MRG-5 prior visit, then PV1', () => {
    const n = one('emap_adt_a45_v24_move_visit_mrg.hl7');
    expect(n.merge).toMatchObject({
      priorMrn: '40800000',
      priorAuthority: 'MRENTR',
      priorAccountNumber: '123412341234',
      priorVisitNumber: '123412341234',
    });
    expect(n.merge?.priorIdentifiers[0].type).toBe('MEDREC');
    expect(n.patient?.mrn).toBe('60600000');
    expect(n.encounter?.location?.pointOfCare).toBe('T42E');
  });

  it('A47: MRG and PID-18 account number', () => {
    const n = one('emap_adt_a47_v24_mrg.hl7');
    expect(n.merge?.priorMrn).toBeDefined();
    expect(n.merge?.priorAuthority).toBe('MRENTR');
    expect(n.patient?.identifiers.length).toBeGreaterThanOrEqual(2);
  });

  it('A17: two PID groups, each with its encounter', () => {
    const n = one('emap_adt_a17_v24_swap_two_patients_zpd.hl7');
    expect(n.patients).toHaveLength(2);
    const [a, b] = n.patients ?? [];
    expect(a.patient.mrn).toBe('40800000');
    expect(b.patient.mrn).toBe('30700000');
    expect(n.patient).toBe(a.patient);
    expect(a.encounter?.location).toMatchObject({ pointOfCare: 'T11E', bed: 'BY02-17' });
    expect(b.encounter?.location).toMatchObject({ pointOfCare: 'T12S', bed: 'BY05-33' });
    expect(b.encounter?.priorLocation?.bed).toBe('BY05-31');
    expect(b.patient.names?.[0]).toEqual({ family: 'SESAME', given: 'SNAPS', type: 'D' });
    expect(b.patient.addresses?.[0]).toEqual({
      line1: '1 FAKE STREET',
      city: 'CLAMBRIDGE',
      postalCode: 'CL22 1AA',
      country: 'ENGLAND',
      type: 'L',
    });
    expect(a.encounter?.attending).toEqual({ id: 'HB', family: 'BADGER', given: 'HONEY' });
  });

  it('Dutch ISO-8859-1 A08: non-ASCII name decoded, FN surname, explicit null PID-29', () => {
    const n = one('nodehl7_adt_a08_v24_dutch_8859_glued_segments.hl7');
    const p = n.patient;
    expect(n.event.structure).toBe('ADT_A01');
    expect(p?.names?.[0]).toEqual({
      family: 'VAN TESTPATIËNT-VAN HET HEK',
      given: 'JEANET',
      middle: 'L M G',
      type: 'L',
    });
    expect(p?.names?.[1]).toEqual({ given: 'JANNIE', type: 'N' });
    expect(p?.identifiers.map((i) => [i.value, i.authority, i.type])).toEqual([
      ['7137542', '', 'PI'],
      ['123456782', 'NLMINBIZA', 'NNNLD'],
      ['AA1234567', 'NLMINBIZA', 'PPN'],
    ]);
    // no authority on the MRN: falls back to MSH-4.1
    expect(p?.authority).toBe('Testziekenhuis');
    expect(p?.addresses?.[0]).toMatchObject({
      line1: 'Dorpsweg 16',
      city: 'Groningen',
      postalCode: '9737AA',
    });
    expect(p?.telecom).toEqual([{ system: 'phone', value: '0501234567', use: 'home' }]);
    expect(p?.deceased).toEqual({ date: null });
    expect(n.encounter).toMatchObject({
      visitNumber: '12344321',
      class: 'I',
      admitAt: { value: '2008-09-17T16:14:12', precision: 'second' },
      attending: { id: '041623', family: 'SPECIALIST' },
    });
  });

  it('Epic A04: PID-2 external id, PID-19 SSN repetitions, race, attending', () => {
    const p = one('medplum_adt_a04_epic_reps.hl7').patient;
    expect(p?.mrn).toBe('454721');
    expect(p?.identifiers).toContainEqual({
      value: '0493575',
      authority: '2',
      type: 'ID 1',
      source: 'PID-2',
    });
    expect(p?.race).toEqual(['B']);
    expect(p?.telecom).toEqual([{ system: 'phone', value: '2161234567', use: 'home' }]);
  });

  it('v2.2 A01 and the A03 with French INS identifiers', () => {
    const v22 = one('medplum_adt_a01_v22.hl7');
    expect(v22.event.trigger).toBe('A01');
    expect(v22.patient?.names?.length).toBeGreaterThan(0);
    const fr = one('nodehl7_adt_a03_v25fra_ins.hl7');
    expect(fr.event.messageControlId).toBe('');
    expect(fr.patient?.identifiers.length).toBeGreaterThanOrEqual(2);
  });

  it('MSH-only ADT has no patient', () => {
    const n = one('nodehl7_adt_a01_v27_msh_only.hl7');
    expect(n.patient).toBeUndefined();
    expect(n.event.messageControlId).toBe('CONTROL_ID');
  });

  it('batch file: the one ADT^A04 inside FHS/BHS', () => {
    const n = one('pyhl7_batch_fhs_bhs_adt_a04.hl7');
    expect(n.event.trigger).toBe('A04');
    expect(n.patient).toBeDefined();
  });
});

describe('ORU spot checks', () => {
  it('glucose: SN value, units, flags, invalid PID-7, PID-6 maiden name', () => {
    const n = one('pyhl7_oru_r01_glucose_sn_fn.hl7');
    expect(n.patient?.birthDate).toBeUndefined(); // PID-7 196203520 is not a date
    expect(n.patient?.mothersMaidenName).toEqual({ family: 'JONES', type: 'M' });
    expect(n.patient?.telecom).toEqual([
      { system: 'phone', value: '2063345232', use: 'home' },
      { system: 'phone', value: '206752121', use: 'work' },
    ]);
    const order = n.results?.[0];
    expect(order?.placerOrderNumber).toEqual({ value: '845439', namespace: 'GHH OE' });
    expect(order?.fillerOrderNumber).toEqual({ value: '1045813', namespace: 'GHH LAB' });
    expect(order?.testCode).toEqual({ code: '1554-5', display: 'GLUCOSE' });
    expect(order?.observedAt).toEqual({ value: '2002-02-15T07:30', precision: 'minute' });
    expect(order?.status).toBeUndefined(); // the sample's 'F' sits in OBR-24, not OBR-25
    const obx = order?.observations[0];
    expect(obx?.value).toEqual({ kind: 'structured-numeric', num1: 182 });
    expect(obx?.units).toEqual({ code: 'mg/dl' });
    expect(obx?.referenceRange).toBe('70_105');
    expect(obx?.abnormalFlags).toEqual(['H']);
    expect(obx?.status).toBe('F');
    expect(order?.observations[1].value).toEqual({ kind: 'unparsed', value: '^182' }); // FN
  });

  it('NIST lead: NM with UCUM units, LOINC code, times with offsets, PID-3 OID authority', () => {
    const n = one('nhc_oru_r01_v251_nist_elr_lead.hl7');
    expect(n.patient?.mrn).toBe('9817566735');
    expect(n.patient?.authority).toBe('MPI');
    expect(n.patient?.race).toEqual(['2106-3']);
    expect(n.patient?.ethnicity).toEqual(['N']);
    expect(n.patient?.telecom).toEqual([{ system: 'phone', value: '3035548889', use: 'home' }]);
    const order = n.results?.[0];
    expect(order?.testCode).toEqual({
      code: '10368-9',
      display: 'Lead BldC-mCnc',
      system: 'LOINC',
    });
    expect(order?.observedAt).toEqual({ value: '2008-08-15T10:30-07:00', precision: 'minute' });
    const obx = order?.observations[0];
    expect(obx?.value).toEqual({ kind: 'number', value: 50 });
    expect(obx?.units).toEqual({
      code: 'ug/dL',
      display: 'micro-gram per deci-liter',
      system: 'UCUM',
    });
    expect(obx?.referenceRange).toBe('<9 mcg/dL: Acceptable background lead exposure');
    expect(obx?.abnormalFlags).toEqual(['H']);
  });

  it('ReportStream: CWE/DT values, e-mail telecom, subcomponent authority, corrected', () => {
    const n = one('cdcrs_oru_r01_v251_utf8_aoe.hl7');
    expect(n.event.occurredAt).toEqual({
      value: '2021-06-08T14:59:37.746-04:00',
      precision: 'second',
    });
    expect(n.patient?.identifiers[0]).toEqual({
      value: 'kc3oy',
      authority: 'Any lab USA',
      type: 'PI',
      assigningFacility: '36D1332559',
      source: 'PID-3',
    });
    expect(n.patient?.sex).toBe('U');
    expect(n.patient?.telecom).toEqual([
      { system: 'phone', value: '2607595016', use: 'home' },
      { system: 'email', value: 'otto.daugherty@email.com', use: 'home' },
    ]);
    const order = n.results?.[0];
    expect(order?.status).toBe('C');
    const values = order?.observations.map((o) => o.value);
    expect(values?.[0]).toEqual({
      kind: 'coded',
      code: '840539006',
      display: 'Disease caused by sever acute respitory syndrome coronavirus 2 (disorder)',
      system: 'SNOMED CT',
    } satisfies ObservationValue);
    expect(values?.[1]).toEqual({ kind: 'date', value: '2021-06-06', precision: 'day' });
    expect(order?.observations[0].status).toBe('C');
  });

  it('OpenLIS: NTE notes attach to the OBX they follow; ZPS and the bogus segment ignored', () => {
    const n = one('openlis_oru_r01_v22_split_pid_zps.hl7');
    const obs = n.results?.[0].observations ?? [];
    expect(obs).toHaveLength(4);
    expect(obs[0].values).toEqual([]);
    expect(obs[1].value).toEqual({ kind: 'coded', code: 'HTN' });
    expect(obs[1].notes).toEqual([
      'Result: NEGATIVE by EIA screen.',
      'No antibodies to HIV-1 detected.',
    ]);
    expect(obs[1].observedAt).toEqual({ value: '1998-07-29T15:57:00', precision: 'second' });
    expect(obs[2].notes).toHaveLength(5);
    expect(obs[3].notes).toEqual([]);
    expect(n.results?.[0].testCode).toEqual({
      code: '083824',
      display: 'PANEL 083824',
      system: 'L',
    });
  });

  it('old-style ORU^R03 without version: FT values', () => {
    const n = one('rubyhl7_oru_r03_no_version_ft.hl7');
    expect(n.event.trigger).toBe('R03');
    expect(n.event.version).toBeUndefined();
    expect(n.patient?.identifiers.map((i) => i.value)).toEqual(['3131313', '4141414']);
    expect(n.results?.[0].observations[0].value).toEqual({ kind: 'text', value: 'BLOOD-RAPID' });
  });

  it('Athena LRI without OBX: an order with no observations', () => {
    const n = one('nhc_oru_r01_v251_athena_lri.hl7');
    expect(n.results?.length).toBeGreaterThanOrEqual(1);
    expect(n.results?.every((r) => r.observations.length === 0)).toBe(true);
  });
});

function pid(fields: Record<number, string>): string {
  const out: string[] = ['PID'];
  for (let i = 1; i <= 30; i++) {
    out.push(fields[i] ?? '');
  }
  return out.join('|');
}

describe('synthetic message: every value type, explicit nulls', () => {
  const text = [
    'MSH|^~\\&|APP|FAC|||20240102030405+0100||ORU^R01^ORU_R01|C1|P|2.5.1',
    'EVN|R01|20240101',
    pid({
      3: '123^^^HOSP^MR~999^^^OTHER^PI',
      5: 'DOE^JANE^Q^JR^DR^^L~SMITH^JANE^^^^^M',
      6: '""',
      7: '""',
      8: '""',
      11: '""',
      13: '^NET^Internet^Jane@Example.ORG~^PRN^FX^^^555^1234567^89',
      19: '123-45-6789',
      24: 'Y',
      25: '2',
      29: '20230405',
      30: 'Y',
    }),
    'OBR|1|P1^PL|F1^FL|GLU^Glucose^LN|||202401020300',
    'NTE|1||order note',
    'OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.5|N~A|||F|||20240102',
    'NTE|1||first\\.br\\second',
    'OBX|2|FT|X^Text||line one\\.br\\line two',
    'OBX|3|SN|Y^Ratio||^1^:^128',
    'OBX|4|ED|PDF^Report||APP^Application^PDF^Base64^QUJD',
    'OBX|5|TS|Z^When||20240102030405.12+0100',
    'OBX|6|NM|Q^Bad||<5',
    'OBX|7|CWE|R^Coded||^^^ALT^Alternate^L',
  ].join('\r');
  const n = normalizeMessage(parseMessage(text));

  it('patient fields and explicit nulls', () => {
    const p = n.patient;
    expect(p?.mrn).toBe('123');
    expect(p?.authority).toBe('HOSP');
    expect(p?.identifiers).toContainEqual({
      value: '123456789',
      authority: 'SSA',
      type: 'SS',
      source: 'PID-19',
    });
    expect(p?.names).toEqual([
      { family: 'DOE', given: 'JANE', middle: 'Q', suffix: 'JR', prefix: 'DR', type: 'L' },
      { family: 'SMITH', given: 'JANE', type: 'M' },
    ]);
    expect(p?.mothersMaidenName).toBeNull();
    expect(p?.birthDate).toBeNull();
    expect(p?.sex).toBeNull();
    expect(p?.addresses).toBeNull();
    expect(p?.telecom).toEqual([
      { system: 'email', value: 'jane@example.org', use: 'home' },
      { system: 'fax', value: '5551234567', use: 'home', extension: '89' },
    ]);
    expect(p?.multipleBirth).toEqual({ indicator: true, order: 2 });
    expect(p?.deceased).toEqual({
      date: { value: '2023-04-05', precision: 'day' },
      indicator: true,
    });
    expect(n.event.occurredAt).toEqual({ value: '2024-01-01', precision: 'day' });
  });

  it('OBX values typed by OBX-2, notes placed', () => {
    const order = n.results?.[0];
    expect(order?.notes).toEqual(['order note']);
    const [nm, ft, sn, ed, ts, bad, cwe] = order?.observations ?? [];
    expect(nm.value).toEqual({ kind: 'number', value: 5.4 });
    expect(nm.code).toEqual({ code: '2345-7', display: 'Glucose', system: 'LOINC' });
    expect(nm.abnormalFlags).toEqual(['N', 'A']);
    expect(nm.notes).toEqual(['first\nsecond']);
    expect(nm.observedAt).toEqual({ value: '2024-01-02', precision: 'day' });
    expect(ft.value).toEqual({ kind: 'text', value: 'line one\nline two' });
    expect(sn.value).toEqual({ kind: 'structured-numeric', num1: 1, separator: ':', num2: 128 });
    expect(ed.value).toEqual({
      kind: 'encapsulated',
      type: 'Application',
      subtype: 'PDF',
      encoding: 'Base64',
      data: 'QUJD',
    });
    expect(ts.value).toEqual({
      kind: 'date',
      value: '2024-01-02T03:04:05.12+01:00',
      precision: 'second',
    });
    expect(bad.value).toEqual({ kind: 'unparsed', value: '<5' });
    expect(cwe.value).toEqual({ kind: 'coded', code: 'ALT', display: 'Alternate', system: 'L' });
  });
});
