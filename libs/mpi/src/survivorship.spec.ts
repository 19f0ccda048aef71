import type { SurvivorshipConfig } from '@engine/config';
import type { SurvivorshipInput } from './golden';
import type { PatientRecord } from './model';
import { computeGolden } from './survivorship';

const RECENT: SurvivorshipConfig = { default: 'mostRecent', trustedAuthorities: [], fields: {} };

function config(overrides: Partial<SurvivorshipConfig> = {}): SurvivorshipConfig {
  return { ...RECENT, ...overrides };
}

function rec(
  id: string,
  authority: string,
  dataTime: number,
  data: Partial<PatientRecord> = {},
): SurvivorshipInput {
  return {
    id,
    authority,
    mrn: `MRN-${id}`,
    dataTime,
    data: { authority, identifiers: [], names: [], addresses: [], telecom: [], ...data },
  };
}

function withSex(id: string, authority: string, dataTime: number, sex: 'F' | 'M' | 'U') {
  return rec(id, authority, dataTime, { sex });
}

/** Every permutation of a small array. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) {
    return [items];
  }
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('computeGolden', () => {
  it('returns an empty golden record for no records', () => {
    expect(computeGolden([], RECENT)).toEqual({ golden: {}, provenance: {} });
  });

  it('leaves out fields no record has a value for', () => {
    const { golden, provenance } = computeGolden(
      [rec('r1', 'HOSP', 1, { sex: 'F' }), rec('r2', 'LAB', 2, { names: null, telecom: null })],
      RECENT,
    );
    expect(golden).toEqual({ sex: 'F' });
    expect(Object.keys(provenance)).toEqual(['sex']);
  });

  describe('only', () => {
    it("uses rule 'only' when a single record has a value, whatever the configured rule", () => {
      const records = [
        rec('r1', 'HOSP', 100, { birthDate: { value: '1962-03-05', precision: 'day' } }),
        rec('r2', 'LAB', 200),
      ];
      for (const rule of ['mostRecent', 'mostTrusted', 'mostFrequent'] as const) {
        const { golden, provenance } = computeGolden(
          records,
          config({ default: rule, trustedAuthorities: ['LAB'] }),
        );
        expect(golden.birthDate).toEqual({ value: '1962-03-05', precision: 'day' });
        expect(provenance.birthDate).toEqual({
          rule: 'only',
          sourceRecordId: 'r1',
          authority: 'HOSP',
          mrn: 'MRN-r1',
        });
      }
    });
  });

  describe('mostRecent', () => {
    it('picks the value with the newest dataTime', () => {
      const { golden, provenance } = computeGolden(
        [
          withSex('r1', 'HOSP', 100, 'F'),
          withSex('r2', 'LAB', 300, 'M'),
          withSex('r3', 'X', 200, 'U'),
        ],
        RECENT,
      );
      expect(golden.sex).toBe('M');
      expect(provenance.sex).toEqual({
        rule: 'mostRecent',
        sourceRecordId: 'r2',
        authority: 'LAB',
        mrn: 'MRN-r2',
      });
    });

    it('breaks dataTime ties by the smallest record id', () => {
      const { golden, provenance } = computeGolden(
        [withSex('r-b', 'HOSP', 100, 'F'), withSex('r-a', 'LAB', 100, 'M')],
        RECENT,
      );
      expect(golden.sex).toBe('M');
      expect(provenance.sex?.sourceRecordId).toBe('r-a');
    });

    it('does not let a newer record without a value win or erase the field', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('old', 'HOSP', 100, {
            sex: 'F',
            language: 'en',
            race: ['2106-3'],
            telecom: [{ system: 'phone', value: '5551234', use: 'home' }],
            names: [{ family: 'Doe', given: 'Jane', type: 'L' }],
          }),
          rec('new', 'LAB', 900, {
            sex: null,
            language: undefined,
            race: [],
            telecom: null,
            names: null,
          }),
        ],
        RECENT,
      );
      expect(golden).toEqual({
        sex: 'F',
        language: 'en',
        race: ['2106-3'],
        telecom: [{ system: 'phone', value: '5551234', use: 'home' }],
        name: { family: 'Doe', given: 'Jane', type: 'L' },
      });
      for (const p of Object.values(provenance)) {
        expect(p).toMatchObject({ rule: 'only', sourceRecordId: 'old' });
      }
    });
  });

  describe('mostTrusted', () => {
    const trusted = config({ default: 'mostTrusted', trustedAuthorities: ['HOSP', 'CLINIC'] });

    it('picks the authority listed first, even when older', () => {
      const { golden, provenance } = computeGolden(
        [
          withSex('r1', 'CLINIC', 500, 'M'),
          withSex('r2', 'HOSP', 100, 'F'),
          withSex('r3', 'LAB', 900, 'U'),
        ],
        trusted,
      );
      expect(golden.sex).toBe('F');
      expect(provenance.sex).toEqual({
        rule: 'mostTrusted',
        sourceRecordId: 'r2',
        authority: 'HOSP',
        mrn: 'MRN-r2',
      });
    });

    it('ranks unlisted authorities after every listed one', () => {
      const { golden, provenance } = computeGolden(
        [withSex('r1', 'LAB', 900, 'U'), withSex('r2', 'CLINIC', 100, 'M')],
        trusted,
      );
      expect(golden.sex).toBe('M');
      expect(provenance.sex?.sourceRecordId).toBe('r2');
    });

    it('uses the most recent among equally ranked records, recording the rule as mostTrusted', () => {
      const sameAuthority = computeGolden(
        [withSex('r1', 'HOSP', 100, 'F'), withSex('r2', 'HOSP', 200, 'M')],
        trusted,
      );
      expect(sameAuthority.golden.sex).toBe('M');
      expect(sameAuthority.provenance.sex).toMatchObject({
        rule: 'mostTrusted',
        sourceRecordId: 'r2',
      });

      const allUnlisted = computeGolden(
        [withSex('r1', 'LAB', 300, 'F'), withSex('r2', 'RAD', 200, 'M')],
        trusted,
      );
      expect(allUnlisted.golden.sex).toBe('F');
      expect(allUnlisted.provenance.sex).toMatchObject({
        rule: 'mostTrusted',
        sourceRecordId: 'r1',
      });
    });

    it('breaks full ties by the smallest record id', () => {
      const { provenance } = computeGolden(
        [withSex('r2', 'HOSP', 100, 'F'), withSex('r1', 'HOSP', 100, 'M')],
        trusted,
      );
      expect(provenance.sex?.sourceRecordId).toBe('r1');
    });

    it('behaves as mostRecent when no authority is trusted', () => {
      const { golden } = computeGolden(
        [withSex('r1', 'HOSP', 100, 'F'), withSex('r2', 'LAB', 200, 'M')],
        config({ default: 'mostTrusted' }),
      );
      expect(golden.sex).toBe('M');
    });
  });

  describe('mostFrequent', () => {
    const frequent = config({ default: 'mostFrequent' });

    it('picks the value most records agree on, kept from its most recent record', () => {
      const { golden, provenance } = computeGolden(
        [
          withSex('r1', 'A', 100, 'F'),
          withSex('r2', 'B', 200, 'F'),
          withSex('r3', 'C', 900, 'M'),
          withSex('r4', 'D', 150, 'F'),
        ],
        frequent,
      );
      expect(golden.sex).toBe('F');
      expect(provenance.sex).toEqual({
        rule: 'mostFrequent',
        sourceRecordId: 'r2',
        authority: 'B',
        mrn: 'MRN-r2',
      });
    });

    it('breaks count ties by the group holding the most recent candidate', () => {
      const { golden, provenance } = computeGolden(
        [
          withSex('r1', 'A', 100, 'F'),
          withSex('r2', 'B', 400, 'M'),
          withSex('r3', 'C', 300, 'F'),
          withSex('r4', 'D', 200, 'M'),
        ],
        frequent,
      );
      expect(golden.sex).toBe('M');
      expect(provenance.sex?.sourceRecordId).toBe('r2');
    });

    it('compares names trimmed and case-insensitively, keeping the most recent spelling', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 100, { names: [{ family: 'SMITH', given: 'JOHN', type: 'L' }] }),
          rec('r2', 'B', 300, { names: [{ family: ' Smith ', given: 'John', type: 'L' }] }),
          rec('r3', 'C', 900, { names: [{ family: 'Smyth', given: 'John', type: 'L' }] }),
        ],
        frequent,
      );
      expect(golden.name).toEqual({ family: ' Smith ', given: 'John', type: 'L' });
      expect(provenance.name).toMatchObject({ rule: 'mostFrequent', sourceRecordId: 'r2' });
    });

    it('compares addresses case-insensitively, ignoring key order', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 100, { addresses: [{ line1: '1 MAIN ST', city: 'BOSTON', type: 'H' }] }),
          rec('r2', 'B', 200, { addresses: [{ type: 'H', city: 'Boston', line1: '1 Main St' }] }),
          rec('r3', 'C', 900, { addresses: [{ line1: '9 Elm St', city: 'Boston', type: 'H' }] }),
        ],
        frequent,
      );
      expect(golden.address).toEqual({ type: 'H', city: 'Boston', line1: '1 Main St' });
      expect(provenance.address?.sourceRecordId).toBe('r2');
    });

    it('compares other values exactly (case matters for codes)', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 100, { language: 'EN' }),
          rec('r2', 'B', 200, { language: 'en' }),
          rec('r3', 'C', 300, { language: 'es' }),
        ],
        frequent,
      );
      // Three groups of one: the most recent wins.
      expect(golden.language).toBe('es');
      expect(provenance.language?.sourceRecordId).toBe('r3');
    });

    it('groups structured values such as telecom lists by content', () => {
      const phone = { system: 'phone', value: '5551234', use: 'home' } as const;
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 100, { telecom: [{ ...phone }] }),
          rec('r2', 'B', 200, { telecom: [{ use: 'home', value: '5551234', system: 'phone' }] }),
          rec('r3', 'C', 900, { telecom: [{ ...phone, value: '5559999' }] }),
        ],
        frequent,
      );
      expect(golden.telecom).toEqual([phone]);
      expect(provenance.telecom?.sourceRecordId).toBe('r2');
    });
  });

  describe('per-field rules', () => {
    it('uses config.fields over config.default', () => {
      const records = [
        rec('r1', 'HOSP', 100, { sex: 'F', language: 'en' }),
        rec('r2', 'LAB', 200, { sex: 'M', language: 'es' }),
      ];
      const { golden, provenance } = computeGolden(
        records,
        config({ trustedAuthorities: ['HOSP'], fields: { sex: 'mostTrusted' } }),
      );
      expect(golden.sex).toBe('F');
      expect(provenance.sex).toMatchObject({ rule: 'mostTrusted', sourceRecordId: 'r1' });
      expect(golden.language).toBe('es');
      expect(provenance.language).toMatchObject({ rule: 'mostRecent', sourceRecordId: 'r2' });
    });

    it('chooses each field independently, so fields may come from different records', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'HOSP', 100, { birthDate: { value: '1962-03-05', precision: 'day' } }),
          rec('r2', 'LAB', 200, { sex: 'M' }),
        ],
        RECENT,
      );
      expect(golden).toEqual({ birthDate: { value: '1962-03-05', precision: 'day' }, sex: 'M' });
      expect(provenance.birthDate?.sourceRecordId).toBe('r1');
      expect(provenance.sex?.sourceRecordId).toBe('r2');
    });
  });

  describe('order independence', () => {
    const records = [
      rec('r3', 'LAB', 200, { sex: 'F', language: 'en', maritalStatus: 'M' }),
      rec('r1', 'HOSP', 200, { sex: 'M', language: 'es', maritalStatus: 'S' }),
      rec('r2', 'CLINIC', 100, { sex: 'M', language: 'en', maritalStatus: 'S' }),
      rec('r4', 'RAD', 200, { sex: 'F', language: 'fr', maritalStatus: 'M' }),
    ];

    it.each(['mostRecent', 'mostTrusted', 'mostFrequent'] as const)(
      '%s gives the same result for every input order',
      (rule) => {
        const cfg = config({ default: rule, trustedAuthorities: ['CLINIC'] });
        const expected = computeGolden(records, cfg);
        for (const order of permutations(records)) {
          expect(computeGolden(order, cfg)).toEqual(expected);
        }
      },
    );

    it('resolves the ties in that data as documented', () => {
      const recent = computeGolden(records, RECENT);
      // r1, r3 and r4 share the newest dataTime: r1 has the smallest id.
      expect(recent.golden).toEqual({ sex: 'M', language: 'es', maritalStatus: 'S' });

      const frequent = computeGolden(records, config({ default: 'mostFrequent' }));
      // sex: F×2 (r3, r4) vs M×2 (r1, r2); the newest candidate overall is r1 → M.
      // language: en×2 beats es and fr; its newest member is r3.
      expect(frequent.golden).toEqual({ sex: 'M', language: 'en', maritalStatus: 'S' });
      expect(frequent.provenance.sex?.sourceRecordId).toBe('r1');
      expect(frequent.provenance.language?.sourceRecordId).toBe('r3');
    });
  });

  describe('candidate extraction', () => {
    it('prefers the first legal name, else takes the first name', () => {
      const legal = computeGolden(
        [
          rec('r1', 'A', 1, {
            names: [
              { family: 'Alias', type: 'A' },
              { family: 'Legal', type: 'L' },
              { family: 'Legal2', type: 'L' },
            ],
          }),
        ],
        RECENT,
      );
      expect(legal.golden.name).toEqual({ family: 'Legal', type: 'L' });

      const noLegal = computeGolden(
        [
          rec('r1', 'A', 1, {
            names: [
              { family: 'Display', type: 'D' },
              { family: 'Alias', type: 'A' },
            ],
          }),
        ],
        RECENT,
      );
      expect(noLegal.golden.name).toEqual({ family: 'Display', type: 'D' });
    });

    it('prefers the first home address, else takes the first address', () => {
      const home = computeGolden(
        [
          rec('r1', 'A', 1, {
            addresses: [
              { line1: 'Work', type: 'B' },
              { line1: 'Home', type: 'H' },
            ],
          }),
        ],
        RECENT,
      );
      expect(home.golden.address).toEqual({ line1: 'Home', type: 'H' });

      const noHome = computeGolden(
        [rec('r1', 'A', 1, { addresses: [{ line1: 'Mail', type: 'M' }, { line1: 'Other' }] })],
        RECENT,
      );
      expect(noHome.golden.address).toEqual({ line1: 'Mail', type: 'M' });
    });

    it('takes the SSN from the first SS identifier, as digits', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 1, {
            identifiers: [
              { value: 'M1', authority: 'A', type: 'MR', source: 'PID-3' },
              { value: '123-45-6789', authority: 'SSA', type: 'SS', source: 'PID-3' },
              { value: '999999999', authority: 'SSA', type: 'SS', source: 'PID-19' },
            ],
          }),
          rec('r2', 'B', 2, {
            identifiers: [{ value: 'M2', authority: 'B', type: 'MR', source: 'PID-3' }],
          }),
        ],
        RECENT,
      );
      expect(golden.ssn).toBe('123456789');
      expect(provenance.ssn).toMatchObject({ rule: 'only', sourceRecordId: 'r1' });
    });

    it('keeps the whole telecom list of the chosen record', () => {
      const telecom = [
        { system: 'phone', value: '5551234', use: 'home' },
        { system: 'email', value: 'jane@example.org', use: 'home' },
      ] as const;
      const { golden } = computeGolden(
        [
          rec('r1', 'A', 1, { telecom: [{ system: 'phone', value: '5550000', use: 'work' }] }),
          rec('r2', 'B', 2, { telecom: [...telecom] }),
        ],
        RECENT,
      );
      expect(golden.telecom).toEqual(telecom);
    });

    it('counts deceased only with a date or an indicator', () => {
      const { golden, provenance } = computeGolden(
        [
          rec('r1', 'A', 100, { deceased: { indicator: true } }),
          rec('r2', 'B', 200, { deceased: { date: null } }),
          rec('r3', 'C', 300, { deceased: null }),
        ],
        RECENT,
      );
      expect(golden.deceased).toEqual({ indicator: true });
      expect(provenance.deceased).toMatchObject({ rule: 'only', sourceRecordId: 'r1' });

      const dated = computeGolden(
        [
          rec('r1', 'A', 100, { deceased: { indicator: true } }),
          rec('r2', 'B', 200, { deceased: { date: { value: '2020-01-02', precision: 'day' } } }),
        ],
        RECENT,
      );
      expect(dated.golden.deceased).toEqual({
        date: { value: '2020-01-02', precision: 'day' },
      });
    });

    it('takes the remaining fields as stored', () => {
      const data: Partial<PatientRecord> = {
        mothersMaidenName: { family: 'Jones', type: 'M' },
        race: ['2106-3', '2054-5'],
        ethnicity: ['2186-5'],
        language: 'en',
        maritalStatus: 'M',
        multipleBirth: { indicator: true, order: 2 },
      };
      const { golden } = computeGolden(
        [rec('r1', 'A', 1, data), rec('r2', 'B', 2, { ethnicity: [], multipleBirth: null })],
        RECENT,
      );
      expect(golden).toEqual(data);
    });
  });
});
