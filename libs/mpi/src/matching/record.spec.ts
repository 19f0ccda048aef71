import type { PatientRecord } from '../model';
import {
  fromPatientRecord,
  matchText,
  splitGeneration,
  splitStreetLine,
  tidyBirthDate,
  tidyEmail,
  tidyPhone,
  tidyPostcode,
  tidySsn,
  tidyStreet,
} from './record';

function patient(over: Partial<PatientRecord> = {}): PatientRecord {
  return {
    authority: 'HOSP_A',
    mrn: 'MRN1',
    identifiers: [],
    names: [],
    addresses: [],
    telecom: [],
    ...over,
  };
}

describe('normalization helpers', () => {
  it('matchText folds case, diacritics and punctuation', () => {
    expect(matchText("  O'Brien-Müller ")).toBe('OBRIEN MULLER');
    expect(matchText('k.c.')).toBe('KC');
    expect(matchText('José  María')).toBe('JOSE MARIA');
    expect(matchText(' - ')).toBeUndefined();
    expect(matchText(undefined)).toBeUndefined();
  });

  it('splits a generation suffix off a name', () => {
    expect(splitGeneration('Smith Jr.')).toEqual({ name: 'SMITH', suffix: 'JR' });
    expect(splitGeneration('John Junior')).toEqual({ name: 'JOHN', suffix: 'JR' });
    expect(splitGeneration('Henry III')).toEqual({ name: 'HENRY', suffix: 'III' });
    expect(splitGeneration('Elk I')).toEqual({ name: 'ELK I' }); // an initial, not a generation
    expect(splitGeneration('Jr')).toEqual({ name: 'JR' });
  });

  it('tidies streets and splits the house number', () => {
    expect(tidyStreet('Wallaby Place')).toBe('WALLABY PL');
    expect(tidyStreet('12th Street North')).toBe('12TH ST N');
    expect(splitStreetLine('7 wallaby place')).toEqual({ number: '7', street: 'WALLABY PL' });
    expect(splitStreetLine('12A, Main Avenue')).toEqual({ number: '12A', street: 'MAIN AVE' });
    expect(splitStreetLine('3/27 Hoseason Street')).toEqual({
      number: '3/27',
      street: 'HOSEASON ST',
    });
    expect(splitStreetLine('PO Box 12')).toEqual({ street: 'PO BOX 12' });
  });

  it('tidies postcodes, phones, e-mail, SSNs and birth dates', () => {
    expect(tidyPostcode('cl22  1aa')).toBe('CL221AA');
    expect(tidyPostcode('02139-4307')).toBe('02139');
    expect(tidyPhone('+1 (617) 555-0123')).toBe('16175550123');
    expect(tidyPhone('555')).toBeUndefined();
    expect(tidyEmail(' MAILTO:Ann@Example.ORG ')).toBe('ann@example.org');
    expect(tidyEmail('not an email')).toBeUndefined();
    expect(tidySsn('123-45-6789')).toBeUndefined(); // placeholder
    expect(tidySsn('000-12-3456')).toBeUndefined();
    expect(tidySsn('111111111')).toBeUndefined();
    expect(tidySsn('219-09-9999')).toBe('219099999');
    expect(tidySsn('1804974')).toBe('1804974'); // other schemes: 6+ digits
    expect(tidyBirthDate('1962-03-05T10:00')).toBe('1962-03-05');
    expect(tidyBirthDate('1962-03')).toBe('1962-03');
    expect(tidyBirthDate('x')).toBeUndefined();
  });
});

describe('fromPatientRecord', () => {
  it('reduces a source record to the matched fields', () => {
    const r = fromPatientRecord(
      patient({
        identifiers: [
          { value: 'MRN1', authority: 'HOSP_A', type: 'MR', source: 'PID-3' },
          { value: '219099999', authority: 'SSA', type: 'SS', source: 'PID-19' },
          { value: 'cf219-27470', authority: 'NIRA', type: 'NI', source: 'PID-3' },
        ],
        names: [
          { family: 'Alias', given: 'Al', type: 'A' },
          { family: 'Smith Jr', given: 'John', middle: 'Paul', type: 'L' },
          { family: 'Jones', given: 'John', type: 'M' },
        ],
        birthDate: { value: '1962-03-05', precision: 'day' },
        sex: 'M',
        addresses: [
          { line1: '1 Work Rd', city: 'Elsewhere', type: 'B' },
          {
            line1: '7 Wallaby Place',
            line2: 'Apt 3',
            city: 'Cleveland',
            postalCode: '2119',
            state: 'sa',
            type: 'H',
          },
        ],
        telecom: [
          { system: 'phone', value: '0299998888', use: 'work' },
          { system: 'phone', value: '0412 345 678', use: 'mobile' },
          { system: 'email', value: 'John@Example.org', use: 'home' },
        ],
        multipleBirth: { indicator: true, order: 2 },
      }),
      'sr-1',
    );
    expect(r).toEqual({
      id: 'sr-1',
      authority: 'HOSP_A',
      given: 'JOHN',
      middle: 'PAUL',
      family: 'SMITH',
      suffix: 'JR',
      familyAliases: ['ALIAS', 'JONES'],
      birthDate: '1962-03-05',
      sex: 'M',
      ssn: '219099999',
      nationalId: 'CF21927470',
      streetNumber: '7',
      street: 'WALLABY PL',
      line2: 'APT 3',
      city: 'CLEVELAND',
      postcode: '2119',
      state: 'SA',
      phone: '0412345678',
      email: 'john@example.org',
      multipleBirth: true,
      birthOrder: 2,
    });
  });

  it('leaves absent values absent (U sex, placeholder SSN, no name)', () => {
    const r = fromPatientRecord(
      patient({
        names: null,
        sex: 'U',
        identifiers: [{ value: '999999999', authority: 'SSA', type: 'SS', source: 'PID-19' }],
      }),
    );
    expect(r).toEqual({ id: 'HOSP_A|MRN1', authority: 'HOSP_A' });
  });

  it('takes the suffix from XPN-4', () => {
    const r = fromPatientRecord(
      patient({ names: [{ family: 'Smith', given: 'John', suffix: 'III', type: 'L' }] }),
    );
    expect(r.suffix).toBe('III');
    expect(r.family).toBe('SMITH');
  });
});
