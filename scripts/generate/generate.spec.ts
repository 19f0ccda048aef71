import { parseMessage } from '@engine/hl7';
import { normalizeMessage, type NormalizedMessage } from '@engine/mpi';
import { buildDataset, DEFAULT_OPTIONS, type Dataset, type GenerateOptions } from './generate';
import { isPlausibleSsn } from './mutate';
import { NICKNAMES } from './nicknames';
import { type Person, personAt, recordAt, type SourceRecord } from './population';

const options = (o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  ...DEFAULT_OPTIONS,
  people: 3000,
  seed: 'spec',
  // More hard negatives than the defaults so that each kind shows up in a small run.
  twinsRate: 0.04,
  juniorSeniorRate: 0.04,
  commonNameRate: 0.05,
  duplicateRate: 0.2,
  ...o,
});

interface Parsed {
  trigger: string;
  normalized: NormalizedMessage;
}

describe('synthetic ADT generator', () => {
  let dataset: Dataset;
  let parsed: Parsed[];
  /** `AUTH|MRN` → messages about that record, in order. */
  const byRecord = new Map<string, Parsed[]>();
  const key = (authority: string, mrn: string): string => `${authority}|${mrn}`;

  beforeAll(() => {
    dataset = buildDataset(options());
    parsed = [...dataset.messages()].map((text) => {
      const msg = parseMessage(text);
      return { trigger: msg.triggerEvent, normalized: normalizeMessage(msg) };
    });
    for (const p of parsed) {
      const patient = p.normalized.patient;
      const k = key(patient?.authority ?? '', patient?.mrn ?? '');
      byRecord.set(k, [...(byRecord.get(k) ?? []), p]);
    }
  });

  const firstMessage = (r: SourceRecord): Parsed => {
    const list = byRecord.get(key(dataset.options.authorities[r.authority], r.mrn));
    if (!list) {
      throw new Error(`no message for record ${r.index}`);
    }
    return list[0];
  };

  it('is deterministic for a seed and differs for another seed', () => {
    const again = buildDataset(options());
    expect([...again.messages()]).toEqual([...dataset.messages()]);
    expect(again.truthCsv()).toBe(dataset.truthCsv());
    expect(again.duplicatesCsv()).toBe(dataset.duplicatesCsv());
    expect(again.summary()).toEqual(dataset.summary());
    const other = buildDataset(options({ seed: 'other' }));
    expect(other.message(0)).not.toBe(dataset.message(0));
    expect(other.truthCsv()).not.toBe(dataset.truthCsv());
  });

  it('honours the duplicate rate', () => {
    for (const rate of [0, 0.05, 0.3]) {
      const d = buildDataset(options({ people: 2000, duplicateRate: rate }));
      const perPerson = new Map<string, number>();
      for (const r of d.plan.records) {
        perPerson.set(r.person.id, (perPerson.get(r.person.id) ?? 0) + 1);
      }
      const withDuplicates = [...perPerson.values()].filter((n) => n > 1).length;
      expect(perPerson.size).toBe(2000);
      expect(Math.abs(withDuplicates / 2000 - rate)).toBeLessThanOrEqual(0.01);
    }
    const s = dataset.summary();
    expect(s.duplicates.people).toBe(600);
    expect(s.duplicates.records).toBeGreaterThanOrEqual(600);
    expect(s.duplicates.records).toBeLessThan(600 * 1.2);
    // Mostly at another authority, some at the same one.
    expect(s.duplicates.sameAuthority / s.duplicates.records).toBeGreaterThan(0.1);
    expect(s.duplicates.sameAuthority / s.duplicates.records).toBeLessThan(0.3);
  });

  it('writes HL7 v2.5.1 ADT messages that parse and normalize with the record MRN and authority', () => {
    expect(parsed).toHaveLength(dataset.messageCount);
    const text = dataset.message(0);
    expect(text).toMatch(/^MSH\|\^~\\&\|[^\r]*\|ADT\^A0[14]\^ADT_A01\|[^|]+\|P\|2\.5\.1\r/);
    expect(text.endsWith('\r')).toBe(true);
    expect(text).not.toContain('\n');
    const controlIds = new Set<string>();
    for (const p of parsed) {
      const n = p.normalized;
      expect(n.supported).toBe(true);
      expect(n.event.type).toBe('ADT');
      expect(n.event.version).toBe('2.5.1');
      expect(['A01', 'A04', 'A08']).toContain(p.trigger);
      controlIds.add(n.event.messageControlId);
      expect(n.patient?.mrn).toMatch(/^M?\d{6,8}$/);
      expect(dataset.options.authorities).toContain(n.patient?.authority);
      expect(n.patient?.identifiers[0]).toMatchObject({ type: 'MR', source: 'PID-3' });
      expect(n.patient?.names?.[0]?.family).toBeTruthy();
      expect(n.patient?.birthDate?.precision).toBe('day');
      expect(['F', 'M']).toContain(n.patient?.sex);
    }
    expect(controlIds.size).toBe(parsed.length);
    // Messages are in time order.
    const times = parsed.map((p) => p.normalized.event.occurredAt?.value ?? '');
    expect(times).toEqual([...times].sort());
  });

  it('opens every record with A01/A04 (with PV1), then only A08 updates', () => {
    for (const [, list] of byRecord) {
      expect(['A01', 'A04']).toContain(list[0].trigger);
      expect(list[0].normalized.encounter?.visitNumber).toMatch(/^V\d+$/);
      for (const later of list.slice(1)) {
        expect(later.trigger).toBe('A08');
      }
    }
    const s = dataset.summary();
    expect(s.messages / s.records).toBeGreaterThan(1.8);
    expect(s.messages / s.records).toBeLessThan(2.2);
  });

  it('has a truth file consistent with the messages', () => {
    const lines = dataset.truthCsv().trim().split('\n');
    expect(lines[0]).toBe('authority,mrn,person_id,kind');
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows).toHaveLength(dataset.plan.records.length);
    const truthKeys = new Set(rows.map(([a, m]) => key(a, m)));
    expect(truthKeys.size).toBe(rows.length);
    expect(new Set(byRecord.keys())).toEqual(truthKeys);
    const people = new Set(rows.map((r) => r[2]));
    expect(people.size).toBe(3000);
    for (const [, , person, kind] of rows) {
      expect(person).toMatch(/^P\d{7}$/);
      expect(['', 'twin', 'junior-senior', 'common-name']).toContain(kind);
    }
    // Messages state what the plan says the record says.
    for (const r of dataset.plan.records.slice(0, 500)) {
      const first = firstMessage(r).normalized.patient;
      const d = recordAt(r, r.created);
      expect(first?.names?.[0]?.family).toBe(d.family.toUpperCase());
      expect(first?.birthDate?.value.replace(/-/g, '')).toBe(d.birth);
    }
  });

  it('lists each duplicate with its original and errors', () => {
    const lines = dataset.duplicatesCsv().trim().split('\n');
    expect(lines[0]).toBe('authority,mrn,person_id,original_authority,original_mrn,errors');
    const truth = new Map(
      dataset
        .truthCsv()
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(','))
        .map(([a, m, p]) => [key(a, m), p]),
    );
    for (const line of lines.slice(1)) {
      const [a, m, p, oa, om] = line.split(',');
      expect(truth.get(key(a, m))).toBe(p);
      expect(truth.get(key(oa, om))).toBe(p);
    }
    const errors = dataset.summary().duplicates.errors;
    for (const [kind, count] of Object.entries(errors)) {
      expect([kind, count > 0]).toEqual([kind, true]);
    }
  });

  it('makes duplicates with the errors they are labelled with', () => {
    const dups = dataset.plan.records.filter((r) => r.original !== undefined);
    let checked = 0;
    for (const dup of dups) {
      const original = dup.original as SourceRecord;
      const person = dup.person;
      const mine = firstMessage(dup).normalized.patient;
      const theirs = firstMessage(original).normalized.patient;
      const name = mine?.names?.[0];
      if (dup.authority === original.authority) {
        expect(dup.mrn).not.toBe(original.mrn);
      }
      for (const error of dup.errors) {
        checked++;
        switch (error) {
          case 'nickname':
            expect(NICKNAMES.get(person.given)).toContain(
              dup.errors.includes('name-swap') ? name?.family : name?.given,
            );
            break;
          case 'dob-transposed': {
            const [y, m, d] = (theirs?.birthDate?.value ?? '').split('-');
            expect(mine?.birthDate?.value).toBe(`${y}-${d}-${m}`);
            break;
          }
          case 'dob-digit':
            expect(mine?.birthDate?.value).not.toBe(theirs?.birthDate?.value);
            break;
          case 'married-name':
            expect(person.marriage?.at).toBeGreaterThan(original.created);
            expect(person.marriage?.at).toBeLessThan(dup.created);
            expect(theirs?.names?.[0]?.family).toBe(person.family);
            break;
          case 'ssn-missing':
            expect(mine?.identifiers.some((i) => i.type === 'SS')).toBe(false);
            expect(theirs?.identifiers.some((i) => i.type === 'SS')).toBe(true);
            break;
          case 'ssn-digit':
          case 'ssn-transposed': {
            const ssn = mine?.identifiers.find((i) => i.type === 'SS')?.value;
            expect(ssn).not.toBe(person.ssn);
            expect(isPlausibleSsn(ssn ?? '')).toBe(true);
            break;
          }
          case 'moved':
            expect(personAt(person, dup.created).address).not.toBe(
              personAt(person, original.created).address,
            );
            expect(mine?.addresses?.[0]).not.toEqual(theirs?.addresses?.[0]);
            break;
          case 'middle-missing':
            expect(name?.middle).toBeUndefined();
            break;
          case 'name-swap': {
            const edits = dup.edits.filter((e) => e.kind !== 'swap-names');
            const unswapped = recordAt({ ...dup, edits }, dup.created);
            expect(name?.family).toBe(unswapped.given.toUpperCase());
            expect(name?.given).toBe(unswapped.family.toUpperCase());
            break;
          }
          case 'typo':
          case 'phone-changed':
            break;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('writes the maiden name of a married woman as PID-5 type M or in PID-6 on some records', () => {
    const styles = new Set<string>();
    for (const r of dataset.plan.records) {
      const m = r.person.marriage;
      const last = r.updates.length > 0 ? r.updates[r.updates.length - 1] : r.created;
      if (m === undefined || last < m.at || r.maiden === 'none' || r.edits.length > 0) {
        continue;
      }
      const list = byRecord.get(key(dataset.options.authorities[r.authority], r.mrn)) ?? [];
      const patient = list[list.length - 1].normalized.patient;
      if (r.maiden === 'pid5') {
        expect(patient?.names?.[1]).toMatchObject({ family: r.person.family, type: 'M' });
      } else {
        expect(patient?.mothersMaidenName?.family).toBe(r.person.family);
      }
      expect(patient?.names?.[0]?.family).toBe(m.family);
      styles.add(r.maiden);
    }
    expect([...styles].sort()).toEqual(['pid5', 'pid6']);
  });

  it('uses fictitious, plausible SSNs, unique per person', () => {
    const ssns = dataset.plan.persons.map((p) => p.ssn);
    expect(new Set(ssns).size).toBe(ssns.length);
    for (const ssn of ssns) {
      expect(isPlausibleSsn(ssn)).toBe(true);
    }
    const sent = parsed.filter((p) =>
      p.normalized.patient?.identifiers.some((i) => i.type === 'SS'),
    ).length;
    expect(sent / parsed.length).toBeGreaterThan(0.6);
    expect(sent / parsed.length).toBeLessThan(0.8);
    // Phones use the 555 exchange; e-mails the reserved example domains.
    for (const p of parsed.slice(0, 2000)) {
      for (const t of p.normalized.patient?.telecom ?? []) {
        expect(t.value).toMatch(
          t.system === 'email' ? /@example\.(com|net|org)$/ : /^\d{3}555\d{4}$/,
        );
      }
    }
  });

  const pairsOf = (kind: Person['kind']): [Person, Person][] => {
    const people = dataset.plan.persons.filter((p) => p.kind === kind);
    const pairs: [Person, Person][] = [];
    for (let i = 0; i + 1 < people.length; i += 2) {
      pairs.push([people[i], people[i + 1]]);
    }
    return pairs;
  };

  it('has twins: same surname, birth date, address and phone, different given names', () => {
    const pairs = pairsOf('twin');
    expect(pairs).toHaveLength(60);
    let sameSex = 0;
    let registeredTogether = 0;
    for (const [a, b] of pairs) {
      expect(b.id).not.toBe(a.id);
      const at = Math.max(a.firstSeen, b.firstSeen);
      const da = personAt(a, at);
      const db = personAt(b, at);
      expect(db.family).toBe(da.family);
      expect(db.birth).toBe(da.birth);
      expect(db.address).toEqual(da.address);
      expect(db.phone).toBe(da.phone);
      expect(db.given).not.toBe(da.given);
      sameSex += a.sex === b.sex ? 1 : 0;
      // The messages of twins registered together state it too.
      const [ra, rb] = [a, b].map((p) =>
        dataset.plan.records.find((r) => r.person === p && r.original === undefined),
      ) as [SourceRecord, SourceRecord];
      if (ra.authority === rb.authority && Math.abs(ra.created - rb.created) < 3600) {
        registeredTogether++;
        const [pa, pb] = [ra, rb].map((r) => firstMessage(r).normalized.patient);
        expect(pb?.names?.[0]?.family).toBe(pa?.names?.[0]?.family);
        expect(pb?.names?.[0]?.given).not.toBe(pa?.names?.[0]?.given);
        expect(pb?.birthDate).toEqual(pa?.birthDate);
        if (ra.sendsAddress && rb.sendsAddress) {
          expect(pb?.addresses).toEqual(pa?.addresses);
        }
      }
    }
    expect(sameSex).toBeGreaterThan(10);
    expect(sameSex).toBeLessThan(pairs.length);
    expect(registeredTogether).toBeGreaterThan(20);
    const truth = dataset.truthCsv();
    expect(truth.match(/,twin\n/g)?.length).toBeGreaterThanOrEqual(120);
  });

  it('has junior/senior pairs: same name and address, JR/SR, births 25-35 years apart', () => {
    const pairs = pairsOf('junior-senior');
    expect(pairs).toHaveLength(60);
    let suffixMissing = 0;
    for (const [senior, junior] of pairs) {
      expect([senior.suffix, junior.suffix]).toEqual(['SR', 'JR']);
      expect(junior.given).toBe(senior.given);
      expect(junior.family).toBe(senior.family);
      expect(junior.sex).toBe('M');
      const at = Math.max(senior.firstSeen, junior.firstSeen);
      expect(personAt(junior, at).address).toEqual(personAt(senior, at).address);
      const gap = Number(junior.birth.slice(0, 4)) - Number(senior.birth.slice(0, 4));
      expect(gap).toBeGreaterThanOrEqual(25);
      expect(gap).toBeLessThanOrEqual(35);
      for (const r of dataset.plan.records.filter(
        (x) => x.person === junior || x.person === senior,
      )) {
        const name = firstMessage(r).normalized.patient?.names?.[0];
        if (r.dropSuffix) {
          suffixMissing++;
          expect(name?.suffix).toBeUndefined();
        } else if (r.edits.length === 0) {
          expect(name?.suffix).toBe(r.person.suffix);
        }
      }
      // Never both of a pair without suffix.
      expect(senior.dropsSuffix && junior.dropsSuffix).toBeFalsy();
    }
    expect(suffixMissing).toBeGreaterThan(0);
    expect(dataset.truthCsv().match(/,junior-senior\n/g)?.length).toBeGreaterThanOrEqual(120);
  });

  it('has many people with the same common name and different birth dates', () => {
    const common = dataset.plan.persons.filter((p) => p.kind === 'common-name');
    expect(common).toHaveLength(150);
    const byName = new Map<string, Set<string>>();
    for (const p of common) {
      const k = `${p.given} ${p.family}`;
      byName.set(k, (byName.get(k) ?? new Set()).add(p.birth));
    }
    const counts = [...byName.values()].map((births) => births.size);
    expect(Math.max(...counts)).toBeGreaterThanOrEqual(8);
    // Distinct birth dates within a name.
    expect(counts.reduce((a, b) => a + b, 0)).toBe(150);
    expect(byName.has('JOHN SMITH') || byName.has('MARIA GARCIA')).toBe(true);
  });

  it('works with a single authority (every duplicate is a same-facility duplicate)', () => {
    const d = buildDataset(options({ people: 300, authorities: ['ONLY'] }));
    const s = d.summary();
    expect(s.duplicates.sameAuthority).toBe(s.duplicates.records);
    for (const text of d.messages()) {
      expect(normalizeMessage(parseMessage(text)).patient?.authority).toBe('ONLY');
    }
  });
});
