import {
  BIRTH_DATE_LEVELS,
  EMAIL_LEVELS,
  FAMILY_LEVELS,
  GIVEN_LEVELS,
  ID_LEVELS,
  MISSING,
  PHONE_LEVELS,
  POSTCODE_LEVELS,
  compareBirthDate,
  compareEmail,
  compareExact,
  compareFamily,
  compareFamilyWithAliases,
  compareGiven,
  compareIdentifier,
  compareMiddle,
  comparePhone,
  comparePostcode,
  compareStreet,
  editKind,
  jaroWinkler,
  phoneticCodes,
  phoneticMatch,
} from './comparators';
import { dateFeatures, nameFeatures } from './features';
import { areNicknames } from './nicknames';

const name = (s: string) => nameFeatures(s)!;
const date = (s: string) => dateFeatures(s)!;
const given = (a: string, b: string) => GIVEN_LEVELS[compareGiven(name(a), name(b))];
const family = (a: string, b: string) => FAMILY_LEVELS[compareFamily(name(a), name(b))];
const dob = (a: string, b: string) => BIRTH_DATE_LEVELS[compareBirthDate(date(a), date(b))];
const id = (a: string, b: string) => ID_LEVELS[compareIdentifier(a, b)];

describe('jaroWinkler', () => {
  // Reference values: Winkler (1990) and the textbook definition (prefix ≤ 4, p = 0.1).
  it.each([
    ['MARTHA', 'MARHTA', 0.9611],
    ['DWAYNE', 'DUANE', 0.84],
    ['DIXON', 'DICKSONX', 0.8133],
    ['JELLYFISH', 'SMELLYFISH', 0.8963],
    ['SHACKLEFORD', 'SHACKELFORD', 0.9818],
    ['JONES', 'JOHNSON', 0.8324],
    ['MASSEY', 'MASSIE', 0.9333],
    ['ABROMS', 'ABRAMS', 0.9222],
  ])('%s / %s = %d', (a, b, expected) => {
    expect(jaroWinkler(a, b)).toBeCloseTo(expected, 3);
    expect(jaroWinkler(b, a)).toBeCloseTo(expected, 3);
  });

  it('is 1 for equal strings, 0 with an empty one', () => {
    expect(jaroWinkler('SMITH', 'SMITH')).toBe(1);
    expect(jaroWinkler('', '')).toBe(0);
    expect(jaroWinkler('SMITH', '')).toBe(0);
    expect(jaroWinkler('AB', 'BA')).toBe(0);
  });
});

describe('phonetic codes (Double Metaphone)', () => {
  it('gives the reference codes', () => {
    expect(phoneticCodes('Smith')).toEqual(['SM0', 'XMT']);
    expect(phoneticCodes('Schmidt')).toEqual(['XMT', 'SMT']);
    expect(phoneticCodes('Catherine')).toEqual(['K0RN', 'KTRN']);
    expect(phoneticCodes('Katherine')).toEqual(['K0RN', 'KTRN']);
    expect(phoneticCodes('Jankelowicz')).toEqual(['JNKLTS', 'ANKLFX']);
  });

  it('matches on any shared code', () => {
    expect(phoneticMatch(name('SMITH'), name('SCHMIDT'))).toBe(true); // XMT
    expect(phoneticMatch(name('STEPHEN'), name('STEVEN'))).toBe(true);
    expect(phoneticMatch(name('SMITH'), name('JONES'))).toBe(false);
  });
});

describe('nicknames', () => {
  it('knows the common pairs, both ways and through a shared canonical name', () => {
    expect(areNicknames('bob', 'Robert')).toBe(true);
    expect(areNicknames('ROBERT', 'BOBBY')).toBe(true);
    expect(areNicknames('Bill', 'William')).toBe(true);
    expect(areNicknames('PEGGY', 'MARGARET')).toBe(true);
    expect(areNicknames('bob', 'bobby')).toBe(true); // both nicknames of robert
    expect(areNicknames('ROBERT', 'WILLIAM')).toBe(false); // not through BILL
    expect(areNicknames('ELIZABETH', 'LIZ')).toBe(true);
    expect(areNicknames('LIZ', 'BETH')).toBe(true); // both nicknames of ELIZABETH
    expect(areNicknames('ZZYZX', 'ROBERT')).toBe(false);
  });
});

describe('compareGiven', () => {
  it('ranks the levels', () => {
    expect(given('ROBERT', 'ROBERT')).toBe('exact');
    expect(given('ELK I', 'ELKI')).toBe('exact'); // spaces ignored
    expect(given('BOB', 'ROBERT')).toBe('nickname');
    expect(given('MICHAEL', 'MICHEAL')).toBe('jw94');
    expect(given('MARY ANN', 'ANN')).toBe('partial');
    expect(given('JON', 'JAN')).toBe('phonetic'); // JW 0.80, both JN
    expect(given('TANYA', 'TONYA')).toBe('jw88');
    expect(given('J', 'JOHN')).toBe('initial');
    expect(given('KATHERINE', 'CATHRYN')).toBe('phonetic');
    expect(given('JOHN', 'MARY')).toBe('else');
  });

  it('is missing when either side is absent', () => {
    expect(compareGiven(undefined, name('JOHN'))).toBe(MISSING);
    expect(compareGiven(name('JOHN'), undefined)).toBe(MISSING);
  });
});

describe('compareFamily', () => {
  it('ranks the levels', () => {
    expect(family('NGUYEN', 'NGUYEN')).toBe('exact');
    expect(family('SHACKLEFORD', 'SHACKELFORD')).toBe('jw94');
    expect(family('LILLIE HINRICHS', 'HINRICHS')).toBe('partial');
    expect(family('SMITH', 'SCHMIDT')).toBe('phonetic');
    expect(family('SMITH', 'JONES')).toBe('else');
  });

  it('uses the best of family name and aliases (married name)', () => {
    const level = compareFamilyWithAliases(name('JONES'), [name('SMITH')], name('SMITH'), []);
    expect(FAMILY_LEVELS[level]).toBe('exact');
  });
});

describe('compareMiddle', () => {
  it('treats an initial as a weak agreement', () => {
    expect(compareMiddle(name('P'), name('PAUL'))).toBe(1);
    expect(compareMiddle(name('PAUL'), name('PAUL'))).toBe(0);
    expect(compareMiddle(name('PAUL'), name('LEE'))).toBe(3);
  });
});

describe('compareBirthDate', () => {
  it('recognises the usual slips', () => {
    expect(dob('1956-04-09', '1956-04-09')).toBe('exact');
    expect(dob('1956-04-09', '1956-09-04')).toBe('day-month-swapped');
    expect(dob('1956-04-09', '1957-04-09')).toBe('year-off-by-one');
    expect(dob('1956-04-09', '1955-04-09')).toBe('year-off-by-one');
    expect(dob('1956-04-09', '1956-04-08')).toBe('one-digit');
    expect(dob('1956-04-09', '1965-04-09')).toBe('one-digit'); // adjacent digits swapped
    expect(dob('1956-04-09', '1956')).toBe('partial');
    expect(dob('1956-04', '1956-04-30')).toBe('partial');
    expect(dob('1956-04-09', '1926-08-12')).toBe('else');
    expect(dob('1956', '1957-04-09')).toBe('else');
  });

  it('is missing when either date is absent', () => {
    expect(compareBirthDate(undefined, date('1956-04-09'))).toBe(MISSING);
  });
});

describe('identifiers (SSN)', () => {
  it('exact, one digit off, adjacent transposition, else', () => {
    expect(id('123456780', '123456780')).toBe('exact');
    expect(id('123456780', '123456789')).toBe('one-digit');
    expect(id('123456780', '12345678')).toBe('one-digit'); // one digit dropped
    expect(id('123456780', '123465780')).toBe('transposed');
    expect(id('123456780', '987654320')).toBe('else');
    expect(compareIdentifier(undefined, '123456780')).toBe(MISSING);
  });

  it('classifies single edits', () => {
    expect(editKind('abc', 'abc')).toBe('equal');
    expect(editKind('abc', 'abd')).toBe('substitution');
    expect(editKind('abc', 'acb')).toBe('transposition');
    expect(editKind('abc', 'ab')).toBe('indel');
    expect(editKind('abc', 'xabc')).toBe('indel');
    expect(editKind('abc', 'cba')).toBe('other');
  });
});

describe('address, phone, e-mail, codes', () => {
  it('postcode: exact, typo, else', () => {
    expect(POSTCODE_LEVELS[comparePostcode('4881', '4881')]).toBe('exact');
    expect(POSTCODE_LEVELS[comparePostcode('4881', '4818')]).toBe('typo');
    expect(POSTCODE_LEVELS[comparePostcode('4881', '2000')]).toBe('else');
  });

  it('street: fuzzy levels on the compact form', () => {
    expect(compareStreet('PRIDHAMST', 'PRIDHAMST')).toBe(0);
    expect(compareStreet('PRIDHAMST', 'PRIDHAMTST')).toBe(1);
    expect(compareStreet('PRIDHAMST', 'WALLABYPL')).toBe(3);
  });

  it('phone: exact, same last 7, typo, else', () => {
    expect(PHONE_LEVELS[comparePhone('6175550123', '6175550123')]).toBe('exact');
    expect(PHONE_LEVELS[comparePhone('16175550123', '5550123')]).toBe('last7');
    expect(PHONE_LEVELS[comparePhone('6175550123', '6175550132')]).toBe('typo');
    expect(PHONE_LEVELS[comparePhone('6175550123', '2125559876')]).toBe('else');
  });

  it('e-mail: exact, same local part, fuzzy, else', () => {
    const cmp = (a: string, b: string) =>
      EMAIL_LEVELS[compareEmail(a, a.split('@')[0], b, b.split('@')[0])];
    expect(cmp('ann@x.org', 'ann@x.org')).toBe('exact');
    expect(cmp('ann@x.org', 'ann@y.com')).toBe('local');
    expect(cmp('hannah88@powers.com', 'hannah8@powers.com')).toBe('fuzzy');
    expect(cmp('ann@x.org', 'bob@y.com')).toBe('else');
  });

  it('exact codes, missing when absent', () => {
    expect(compareExact('F', 'F')).toBe(0);
    expect(compareExact('F', 'M')).toBe(1);
    expect(compareExact(undefined, 'M')).toBe(MISSING);
  });
});
