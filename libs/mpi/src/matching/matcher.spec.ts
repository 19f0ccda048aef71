import { resolveMatchParams } from './config';
import { DEFAULT_PARAMS } from './defaults';
import { prepareRecord } from './features';
import { FIELDS, compileParams } from './fellegi-sunter';
import { PairScorer, scorePair } from './matcher';
import type { MatchRecord } from './record';

const compiled = compileParams(DEFAULT_PARAMS);

const JOHN: MatchRecord = {
  id: 'left',
  authority: 'HOSP_A',
  given: 'JOHN',
  middle: 'PAUL',
  family: 'KOWALSKI',
  birthDate: '1978-06-14',
  sex: 'M',
  ssn: '219099999',
  streetNumber: '12',
  street: 'MAPLE AVE',
  city: 'SPRINGFIELD',
  postcode: '62704',
  state: 'IL',
  phone: '2175550147',
  email: 'jkowalski@example.org',
};

function person(over: Partial<MatchRecord>): MatchRecord {
  return { ...JOHN, id: 'right', authority: 'HOSP_B', ...over };
}

function drop(record: MatchRecord, ...fields: (keyof MatchRecord)[]): MatchRecord {
  const copy = { ...record };
  for (const f of fields) {
    delete copy[f];
  }
  return copy;
}

const score = (a: MatchRecord, b: MatchRecord) =>
  scorePair(prepareRecord(a), prepareRecord(b), compiled);

describe('scorePair decisions', () => {
  it('auto-links the same person sent by two facilities', () => {
    const s = score(JOHN, person({}));
    expect(s.decision).toBe('auto-link');
    expect(s.held).toEqual([]);
    expect(s.score).toBeGreaterThan(DEFAULT_PARAMS.thresholds.autoLink);
  });

  it('auto-links through typing errors, a nickname and a swapped day/month', () => {
    const s = score(
      JOHN,
      person({
        given: 'JACK', // nickname of JOHN
        family: 'KOWALSKY',
        birthDate: '1978-06-14',
        street: 'MAPLE AVE',
        postcode: '62740',
        ssn: undefined,
        email: undefined,
      }),
    );
    expect(s.breakdown.find((e) => e.field === 'given')?.level).toBe('nickname');
    expect(s.decision).toBe('auto-link');
    const swapped = score(JOHN, person({ birthDate: '1978-06-14'.replace('06-14', '06-41') }));
    expect(swapped.decision).not.toBe('no-match');
    const dm = score(drop(JOHN, 'ssn'), drop(person({ birthDate: '1978-12-06' }), 'ssn'));
    const dmSwap = score(
      { ...drop(JOHN, 'ssn'), birthDate: '1978-06-12' },
      drop(person({ birthDate: '1978-12-06' }), 'ssn'),
    );
    expect(dmSwap.breakdown.find((e) => e.field === 'birthDate')?.level).toBe('day-month-swapped');
    expect(dmSwap.decision).toBe('auto-link');
    expect(dm.decision).not.toBe('auto-link');
  });

  it('never auto-links two records of the same assigning authority', () => {
    const s = score(JOHN, person({ authority: 'HOSP_A' }));
    expect(s.score).toBeGreaterThan(DEFAULT_PARAMS.thresholds.autoLink);
    expect(s.decision).toBe('review');
    expect(s.held).toEqual(['same-authority']);
  });

  it('applies the same-authority rule only to a non-empty authority', () => {
    expect(score({ ...JOHN, authority: '' }, person({ authority: '' })).decision).toBe('auto-link');
  });

  it('needs more than name, birth date and sex to auto-link', () => {
    const bare = (r: MatchRecord): MatchRecord => ({
      id: r.id,
      authority: r.authority,
      given: r.given,
      family: r.family,
      birthDate: r.birthDate,
      sex: r.sex,
    });
    const s = score(bare(JOHN), bare(person({})));
    expect(s.decision).toBe('review');
    expect(s.held).toEqual([]);
    expect(score(bare(JOHN), { ...bare(person({})), postcode: JOHN.postcode }).decision).toBe(
      'review',
    );
    expect(
      score({ ...bare(JOHN), postcode: JOHN.postcode }, { ...bare(person({})), postcode: '62704' })
        .decision,
    ).toBe('auto-link');
  });

  it('does not match different people', () => {
    const s = score(JOHN, {
      id: 'other',
      authority: 'HOSP_B',
      given: 'MARIA',
      family: 'GONZALEZ',
      birthDate: '1990-01-30',
      sex: 'F',
      streetNumber: '4',
      street: 'OAK ST',
      city: 'SPRINGFIELD',
      postcode: '62701',
      state: 'IL',
    });
    expect(s.decision).toBe('no-match');
    expect(s.score).toBeLessThan(0);
  });
});

describe('hard negatives', () => {
  // Twins: same family name, birth date, address, phone; different given names and SSNs.
  const twin = (over: Partial<MatchRecord>) =>
    person({ given: 'JAMES', middle: undefined, ssn: '219099998', email: undefined, ...over });

  it('twins are never auto-linked (a different given name is a veto)', () => {
    for (const other of [
      twin({}),
      twin({ ssn: undefined }),
      drop(twin({}), 'ssn', 'sex'),
      twin({ given: 'J', ssn: undefined }), // an initial only
    ]) {
      const s = score(drop(JOHN, 'middle', 'email'), other);
      expect(s.decision).not.toBe('auto-link');
      expect(s.held).toContain('veto:given');
    }
  });

  it('twins whose names sound alike are not auto-linked either', () => {
    const s = score(drop(JOHN, 'middle', 'email'), twin({ given: 'JOANNA', ssn: undefined }));
    expect(s.breakdown.find((e) => e.field === 'given')?.level).toBe('phonetic');
    expect(s.held).toEqual(['veto:given']);
    const girl = score(drop(JOHN, 'middle', 'email'), twin({ given: 'JOANNA', sex: 'F' }));
    expect(girl.held).toEqual(['veto:given', 'veto:sex']);
  });

  it('twins with similar names are held back when the multiple birth is flagged', () => {
    const a = { ...JOHN, given: 'ASHLEY', ssn: undefined, multipleBirth: true };
    const b = person({ given: 'ASHLYN', ssn: undefined, multipleBirth: true });
    const s = score(a, b);
    expect(s.breakdown.find((e) => e.field === 'given')?.level).toBe('jw88');
    expect(s.decision).toBe('review');
    expect(s.held).toEqual(['multiple-birth']);
    // The same pair without the flag is a typing error of one person.
    expect(
      score({ ...a, multipleBirth: undefined }, { ...b, multipleBirth: undefined }).decision,
    ).toBe('auto-link');
  });

  it('father and son of the same name and address are never auto-linked', () => {
    const father = { ...drop(JOHN, 'ssn', 'email'), birthDate: '1951-03-02' };
    const son = person({ ssn: undefined, email: undefined, birthDate: '1978-06-14' });
    const s = score(father, son);
    expect(s.decision).not.toBe('auto-link');
    expect(s.held).toContain('veto:birthDate');
  });

  it('a Jr/Sr conflict is a veto even when the birth date is missing or equal', () => {
    const sr = { ...drop(JOHN, 'ssn', 'birthDate'), suffix: 'SR' };
    const jr = drop(person({ suffix: 'JR', ssn: undefined }), 'birthDate');
    const s = score(sr, jr);
    expect(s.decision).not.toBe('auto-link');
    expect(s.held).toContain('veto:suffix');
    expect(s.breakdown.find((e) => e.field === 'suffix')).toMatchObject({
      level: 'disagree',
      veto: true,
      left: 'SR',
      right: 'JR',
    });
    const sameDate = score({ ...JOHN, suffix: 'SR' }, person({ suffix: 'JR' }));
    expect(sameDate.decision).toBe('review');
    expect(sameDate.held).toEqual(['veto:suffix']);
  });

  it('same name and address without a birth date or identifier is not auto-linked', () => {
    const s = score(drop(JOHN, 'ssn', 'birthDate'), person({ ssn: undefined }));
    expect(s.score).toBeGreaterThan(DEFAULT_PARAMS.thresholds.autoLink);
    expect(s.decision).toBe('review');
    expect(s.held).toEqual(['no-birth-date']);
    // An agreeing SSN is anchor enough.
    expect(score(drop(JOHN, 'birthDate'), person({})).decision).toBe('auto-link');
  });
});

describe('missing values', () => {
  it('a value missing on either side adds weight 0', () => {
    const full = score(JOHN, person({}));
    for (const field of ['phone', 'email', 'ssn', 'street', 'sex'] as const) {
      const partial = score(JOHN, drop(person({}), field));
      const entry = partial.breakdown.find((e) => e.field === field)!;
      expect(entry.level).toBe('missing');
      expect(entry.weight).toBe(0);
      const fullWeight = full.breakdown.find((e) => e.field === field)!.weight;
      expect(partial.score).toBeCloseTo(full.score - fullWeight, 10);
      // Missing is neither agreement nor disagreement: between the two.
      expect(fullWeight).toBeGreaterThan(0);
    }
  });
});

describe('breakdown', () => {
  it('lists every field with its level, weight and both values', () => {
    const s = score(JOHN, person({ given: 'JOHNN', phone: undefined }));
    expect(s.breakdown.map((e) => e.field)).toEqual(FIELDS.map((f) => f.name));
    const given = s.breakdown.find((e) => e.field === 'given')!;
    expect(given).toEqual({
      field: 'given',
      label: 'Given name',
      level: 'jw94',
      weight: compiled.weights[0][2],
      left: 'JOHN',
      right: 'JOHNN',
    });
    expect(s.breakdown.find((e) => e.field === 'phone')).toEqual({
      field: 'phone',
      label: 'Phone',
      level: 'missing',
      weight: 0,
      left: '2175550147',
    });
    const total = s.breakdown.reduce((sum, e) => sum + e.weight, 0);
    expect(total).toBeCloseTo(s.score, 10);
  });

  it('marks vetoes and swapped names', () => {
    const s = score(JOHN, person({ given: 'KOWALSKI', family: 'JOHN' }));
    const given = s.breakdown.find((e) => e.field === 'given')!;
    expect(given).toMatchObject({ level: 'exact', note: 'names swapped', right: 'JOHN' });
    expect(s.decision).toBe('auto-link');
    const twin = score(JOHN, person({ given: 'PETER' }));
    expect(twin.breakdown.find((e) => e.field === 'given')).toMatchObject({
      level: 'else',
      veto: true,
    });
    expect(twin.breakdown.find((e) => e.field === 'given')!.weight).toBeLessThan(0);
  });
});

describe('PairScorer and params', () => {
  it('gives the same score and decision as scorePair', () => {
    const scorer = new PairScorer(DEFAULT_PARAMS);
    for (const other of [person({}), person({ authority: 'HOSP_A' }), person({ given: 'JAMES' })]) {
      const a = prepareRecord(JOHN);
      const b = prepareRecord(other);
      const fast = scorer.score(a, b);
      const full = scorePair(a, b, DEFAULT_PARAMS);
      expect(fast.score).toBeCloseTo(full.score, 10);
      expect(fast.decision).toBe(full.decision);
    }
  });

  it('follows configured thresholds and m/u overrides', () => {
    const strict = resolveMatchParams({ thresholds: { autoLink: 500, review: 400 } });
    expect(scorePair(prepareRecord(JOHN), prepareRecord(person({})), strict).decision).toBe(
      'no-match',
    );
    const a = prepareRecord(JOHN);
    const b = prepareRecord(person({ given: 'JACK' }));
    const before = scorePair(a, b, DEFAULT_PARAMS);
    const params = resolveMatchParams({
      thresholds: DEFAULT_PARAMS.thresholds,
      m: { given: { nickname: 0.001 } },
    });
    const after = scorePair(a, b, params);
    const w = (p: typeof after) => p.breakdown.find((e) => e.field === 'given')!.weight;
    expect(w(after)).toBeLessThan(w(before));
    expect(after.score).toBeCloseTo(before.score - (w(before) - w(after)), 10);
  });
});
