import { BLOCKING_RULES, BlockIndex, blockingKeys } from './blocking';
import { prepareRecord } from './features';
import type { MatchRecord } from './record';

const base: MatchRecord = {
  id: 'a',
  authority: 'A',
  given: 'MITCHELL',
  family: 'GREEN',
  birthDate: '1956-04-09',
  ssn: '1804974',
  streetNumber: '7',
  street: 'WALLABY PL',
  postcode: '2119',
  phone: '0299998888',
  email: 'mg@example.org',
};

const keys = (r: MatchRecord) => blockingKeys(prepareRecord(r));
const shares = (a: MatchRecord, b: MatchRecord) => {
  const kb = new Set(keys(b));
  return keys(a).some((k) => kb.has(k));
};

describe('blockingKeys', () => {
  it('makes one key per rule and value, prefixed by the rule id', () => {
    const k = keys(base);
    expect(k).toEqual(
      expect.arrayContaining([
        'nd:KRN:19560409', // phonetic family + date
        'nd:MXL:19560409', // phonetic given + date
        'dp:19560409:2119',
        'gy:MXL:1956:2119',
        'ss:1804974',
        'ph:299998888',
        'em:mg@example.org',
      ]),
    );
    expect(new Set(k).size).toBe(k.length);
    const rules = new Set(BLOCKING_RULES.map((r) => r.id));
    for (const key of k) {
      expect(rules.has(key.split(':')[0])).toBe(true);
    }
  });

  it('gives nothing for an empty record', () => {
    expect(keys({ id: 'x', authority: '' })).toEqual([]);
  });

  it('keeps a duplicate with one wrong field in some block', () => {
    const variants: Partial<MatchRecord>[] = [
      { family: 'GREENE' },
      { given: 'MICHELL' },
      { birthDate: '1956-09-04' },
      { birthDate: undefined, ssn: undefined },
      { postcode: '2191', phone: undefined },
      { given: 'GREEN', family: 'MITCHELL' }, // swapped
      { ssn: '1804947', phone: undefined, email: undefined },
    ];
    for (const v of variants) {
      expect(shares(base, { ...base, id: 'b', ...v })).toBe(true);
    }
  });

  it('does not block unrelated people together', () => {
    const other: MatchRecord = {
      id: 'c',
      authority: 'A',
      given: 'ISABELLE',
      family: 'MASON',
      birthDate: '1992-11-19',
      streetNumber: '23',
      street: 'GUNDULU PL',
      postcode: '2193',
    };
    expect(shares(base, other)).toBe(false);
  });
});

describe('BlockIndex', () => {
  it('looks candidates up and enumerates each pair once', () => {
    const index = new BlockIndex();
    index.add(['k1', 'k2']);
    index.add(['k1', 'k2']);
    index.add(['k2', 'k3']);
    index.add(['k4']);
    expect([...index.lookup(['k1'])]).toEqual([0, 1]);
    expect([...index.lookup(['k3', 'k1'])].sort()).toEqual([0, 1, 2]);
    expect([...index.pairs()].sort()).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
    expect([...index.pairs((i, j) => i === 0 && j === 2)]).toEqual([[0, 2]]);
  });

  it('skips keys shared by more than maxBlockSize records', () => {
    const index = new BlockIndex({ maxBlockSize: 2 });
    for (let i = 0; i < 3; i++) {
      index.add(['common', `own${i}`]);
    }
    index.add(['own0']);
    expect(index.oversizedKeys()).toEqual(['common']);
    expect(index.lookup(['common']).size).toBe(0);
    expect([...index.pairs()]).toEqual([[0, 3]]);
  });
});
