import {
  isExplicitNull,
  maskSsn,
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

describe('parseHl7Date', () => {
  it.each([
    ['1962', '1962', 'year'],
    ['196203', '1962-03', 'month'],
    ['19620305', '1962-03-05', 'day'],
    ['2012071715', '2012-07-17T15', 'hour'],
    ['201207171525', '2012-07-17T15:25', 'minute'],
    ['20120717152509', '2012-07-17T15:25:09', 'second'],
    ['20210608145937.746', '2021-06-08T14:59:37.746', 'second'],
    ['20210608145937.746-0400', '2021-06-08T14:59:37.746-04:00', 'second'],
    ['202106040725-0400', '2021-06-04T07:25-04:00', 'minute'],
    ['20080917161412+0100', '2008-09-17T16:14:12+01:00', 'second'],
    ['2008091716+0000', '2008-09-17T16+00:00', 'hour'],
    ['20000229', '2000-02-29', 'day'],
    [' 19980729155700', '1998-07-29T15:57:00', 'second'],
  ])('%s → %s (%s)', (input, value, precision) => {
    expect(parseHl7Date(input)).toEqual({ value, precision });
  });

  it('drops an offset sent on a date without time', () => {
    expect(parseHl7Date('20210606-0400')).toEqual({ value: '2021-06-06', precision: 'day' });
  });

  it.each([
    '',
    '   ',
    '""',
    '196203520', // 9 digits (glucose sample PID-7)
    '19621305', // month 13
    '19620230', // 30 February
    '19000229', // not a leap year
    '2012071725', // hour 25
    '201207171560', // minute 60
    '20120717152560', // second 60
    '20120717+2500', // bad offset
    '2012-07-17',
    'abcd',
    '12',
  ])('invalid %p → undefined, no throw', (input) => {
    expect(parseHl7Date(input)).toBeUndefined();
  });

  it('null and undefined → undefined', () => {
    expect(parseHl7Date(undefined)).toBeUndefined();
    expect(parseHl7Date(null)).toBeUndefined();
  });
});

describe('names and text', () => {
  it('trims, collapses spaces and upper-cases names (non-ASCII too)', () => {
    expect(normalizeName('  van  Testpatiënt-van het   Hek ')).toBe('VAN TESTPATIËNT-VAN HET HEK');
    expect(normalizeName("o'brien")).toBe("O'BRIEN");
    expect(normalizeName('\tJohn\t')).toBe('JOHN');
  });

  it('empty, blank and explicit null names → undefined', () => {
    expect(normalizeName('')).toBeUndefined();
    expect(normalizeName('   ')).toBeUndefined();
    expect(normalizeName('""')).toBeUndefined();
    expect(normalizeName(undefined)).toBeUndefined();
  });

  it('tidyText keeps case, codes keep case', () => {
    expect(tidyText('  1 FAKE   Street ')).toBe('1 FAKE Street');
    expect(normalizeCode(' Adm*Conf ')).toBe('Adm*Conf');
  });
});

describe('explicit null', () => {
  it('recognises "" only', () => {
    expect(isExplicitNull('""')).toBe(true);
    expect(isExplicitNull(' "" ')).toBe(true);
    expect(isExplicitNull('')).toBe(false);
    expect(isExplicitNull(undefined)).toBe(false);
    expect(isExplicitNull(null)).toBe(false);
    expect(isExplicitNull('"x"')).toBe(false);
  });
});

describe('phones and e-mail', () => {
  it.each([
    ['(216)123-4567', '2161234567'],
    ['050-1234567', '0501234567'],
    ['+31 (0)50 123 4567', '+310501234567'],
    [' +1-555-0100 ', '+15550100'],
    ['555', '555'],
  ])('%s → %s', (input, out) => {
    expect(normalizePhone(input)).toBe(out);
  });

  it('no digits → undefined', () => {
    expect(normalizePhone('')).toBeUndefined();
    expect(normalizePhone('n/a')).toBeUndefined();
    expect(normalizePhone(undefined)).toBeUndefined();
  });

  it('lower-cases e-mail and refuses non-addresses', () => {
    expect(normalizeEmail(' Otto.Daugherty@Email.COM ')).toBe('otto.daugherty@email.com');
    expect(normalizeEmail('mailto:A@B.org')).toBe('a@b.org');
    expect(normalizeEmail('not an email')).toBeUndefined();
    expect(normalizeEmail('')).toBeUndefined();
  });
});

describe('postal codes', () => {
  it('trims, collapses and upper-cases', () => {
    expect(normalizePostalCode(' cl22   1aa ')).toBe('CL22 1AA');
    expect(normalizePostalCode('9737aa')).toBe('9737AA');
    expect(normalizePostalCode('  ')).toBeUndefined();
  });
});

describe('SSN', () => {
  it('keeps digits only', () => {
    expect(normalizeSsn('555-44-4444')).toBe('555444444');
    expect(normalizeSsn(' 400003403 ')).toBe('400003403');
    expect(normalizeSsn('---')).toBeUndefined();
  });

  it('masks all but the last 4 digits', () => {
    expect(maskSsn('555-44-4444')).toBe('***-**-4444');
    expect(maskSsn('1129086')).toBe('***9086');
    expect(maskSsn('1234')).toBe('****');
    expect(maskSsn('12')).toBe('**');
    expect(maskSsn('')).toBeUndefined();
    expect(maskSsn(undefined)).toBeUndefined();
  });
});

describe('sex, yes/no, numbers', () => {
  it('maps PID-8', () => {
    expect(normalizeSex('F')).toBe('F');
    expect(normalizeSex('m')).toBe('M');
    expect(normalizeSex('O')).toBe('O');
    expect(normalizeSex('A')).toBe('O');
    expect(normalizeSex('U')).toBe('U');
    expect(normalizeSex('N')).toBe('U');
    expect(normalizeSex('Q')).toBe('U');
    expect(normalizeSex('')).toBeUndefined();
  });

  it('parses Y/N', () => {
    expect(parseYesNo('Y')).toBe(true);
    expect(parseYesNo('n')).toBe(false);
    expect(parseYesNo('X')).toBeUndefined();
    expect(parseYesNo(undefined)).toBeUndefined();
  });

  it('parses decimals only', () => {
    expect(parseNumber('182')).toBe(182);
    expect(parseNumber(' -1.5 ')).toBe(-1.5);
    expect(parseNumber('.5')).toBe(0.5);
    expect(parseNumber('<5')).toBeUndefined();
    expect(parseNumber('1e3')).toBeUndefined();
    expect(parseNumber('')).toBeUndefined();
  });
});
