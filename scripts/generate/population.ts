/**
 * Plans a synthetic population: people with a life over the feed window (moves, new phone
 * numbers, marriages), the source records each facility keeps about them (MRNs), the
 * duplicate records with their data-entry errors, and hard negatives (twins, junior/senior,
 * common names). Nothing here writes HL7; `adt.ts` renders what a record says at a time.
 */
import {
  CITIES,
  type City,
  COMMON_FULL_NAMES,
  DIRECTIONS,
  EMAIL_DOMAINS,
  EXTRA_AREA_CODES,
  FAMILY,
  FEMALE_GIVEN,
  MALE_GIVEN,
  STREET_NAMES,
  STREET_TYPES,
  SURNAME_HEADS,
  SURNAME_TAILS,
} from './data';
import { ageAt, DAY, dateToSeconds, daysInMonth, formatDate, WINDOW_SECONDS } from './dates';
import {
  birthDigitOff,
  randomSsn,
  ssnDigitOff,
  ssnTransposed,
  transposeDayMonth,
  typo,
} from './mutate';
import { NICKNAMES } from './nicknames';
import { type Rng, Weighted } from './rng';

export type Sex = 'F' | 'M';
export type HardNegativeKind = 'twin' | 'junior-senior' | 'common-name';

/** Errors a duplicate record can carry, as named in `summary.json` and `duplicates.csv`. */
export const ERROR_KINDS = [
  'typo',
  'nickname',
  'dob-transposed',
  'dob-digit',
  'married-name',
  'ssn-missing',
  'ssn-digit',
  'ssn-transposed',
  'moved',
  'phone-changed',
  'middle-missing',
  'name-swap',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface GenerateOptions {
  people: number;
  /** Share of people who get at least one duplicate record (0-1). */
  duplicateRate: number;
  seed: string;
  /** Assigning authorities (PID-3.4, MSH-4); the first gets the most patients. */
  authorities: string[];
  /** Share of people who are one of a pair of twins. */
  twinsRate: number;
  /** Share of people who are one of a junior/senior pair. */
  juniorSeniorRate: number;
  /** Share of people with one of a few very common full names. */
  commonNameRate: number;
  /** Mean number of messages per source record (the registration plus A08 updates), >= 1. */
  messagesPerPerson: number;
  /** Share of duplicate records made at the same authority as the original (same-facility). */
  sameAuthorityRate: number;
}

export const DEFAULT_OPTIONS: Omit<GenerateOptions, 'people'> = {
  duplicateRate: 0.1,
  seed: '1',
  authorities: ['HOSP', 'CLINIC', 'LAB'],
  twinsRate: 0.01,
  juniorSeniorRate: 0.01,
  commonNameRate: 0.02,
  messagesPerPerson: 2,
  sameAuthorityRate: 0.2,
};

export interface Address {
  number: number;
  direction?: string;
  street: string;
  /** Index into STREET_TYPES. */
  streetType: number;
  unit?: string;
  city: City;
  zip: string;
  zip4: string;
}

/** A value from a time on (window seconds); histories are sorted by `at`. */
export interface Timed<T> {
  at: number;
  value: T;
}

export interface Person {
  /** `P0000001`: the truth file's person_id. */
  id: string;
  kind: HardNegativeKind | '';
  sex: Sex;
  given: string;
  middle?: string;
  family: string;
  suffix?: 'JR' | 'SR';
  birth: string;
  ssn: string;
  email?: string;
  /** Shared by twins and by juniors living with their father. */
  addresses: Timed<Address>[];
  phones: Timed<string>[];
  marriage?: { at: number; family: string };
  /** Twins: birth order 1 or 2 (PID-25). */
  birthOrder?: number;
  /** Junior/senior: this one's records often leave the suffix out (never both of a pair). */
  dropsSuffix?: boolean;
  /** When the person first comes to one of the facilities. */
  firstSeen: number;
}

export type Edit =
  | { kind: 'name'; field: 'given' | 'family'; from: string; to: string }
  | { kind: 'birth'; to: string }
  | { kind: 'ssn'; to: string }
  | { kind: 'drop-middle' }
  | { kind: 'swap-names' };

export type MaidenStyle = 'none' | 'pid5' | 'pid6';

export interface SourceRecord {
  index: number;
  person: Person;
  /** Index into options.authorities. */
  authority: number;
  /** Assigned in order of creation at each authority. */
  mrn: string;
  created: number;
  trigger: 'A01' | 'A04';
  /** For a duplicate: the person's first record. */
  original?: SourceRecord;
  sendsSsn: boolean;
  sendsPhone: boolean;
  sendsEmail: boolean;
  sendsAddress: boolean;
  sendsMultipleBirth: boolean;
  middleInitial: boolean;
  /** Where a married woman's maiden name goes: nowhere, PID-5 repetition type M, or PID-6. */
  maiden: MaidenStyle;
  dropSuffix: boolean;
  errors: ErrorKind[];
  edits: Edit[];
  /** No contact (message) at or after this time: the facility keeps stale data. */
  contactUntil: number;
  /** Times of the A08 updates. */
  updates: number[];
}

export interface Plan {
  persons: Person[];
  records: SourceRecord[];
  duplicatedPersons: number;
  twinPairs: number;
  juniorSeniorPairs: number;
  commonNamePersons: number;
}

/** Demographics as one message states them. */
export interface Demographics {
  family: string;
  given: string;
  middle?: string;
  suffix?: string;
  maiden?: string;
  /** Where the maiden name is written (PID-5 repetition type M, or PID-6). */
  maidenIn?: 'pid5' | 'pid6';
  birth: string;
  sex: Sex;
  ssn?: string;
  address?: Address;
  phone?: string;
  email?: string;
  birthOrder?: number;
}

export function historyAt<T>(history: readonly Timed<T>[], at: number): T {
  let value = history[0].value;
  for (const entry of history) {
    if (entry.at > at) {
      break;
    }
    value = entry.value;
  }
  return value;
}

/** What the person is at `at`, before any record's errors. */
export function personAt(person: Person, at: number): Demographics {
  const married = person.marriage !== undefined && person.marriage.at <= at;
  return {
    family: married ? (person.marriage?.family ?? person.family) : person.family,
    given: person.given,
    middle: person.middle,
    suffix: person.suffix,
    maiden: married ? person.family : undefined,
    birth: person.birth,
    sex: person.sex,
    ssn: person.ssn,
    address: historyAt(person.addresses, at),
    phone: historyAt(person.phones, at),
    email: person.email,
    birthOrder: person.birthOrder,
  };
}

/** What `record`'s facility says about its patient in a message sent at `at`. */
export function recordAt(record: SourceRecord, at: number): Demographics {
  const d = personAt(record.person, at);
  let swap = false;
  for (const edit of record.edits) {
    switch (edit.kind) {
      case 'name':
        if (d[edit.field] === edit.from) {
          d[edit.field] = edit.to;
        }
        break;
      case 'birth':
        d.birth = edit.to;
        break;
      case 'ssn':
        d.ssn = edit.to;
        break;
      case 'drop-middle':
        d.middle = undefined;
        break;
      case 'swap-names':
        swap = true;
        break;
    }
  }
  if (swap) {
    [d.given, d.family] = [d.family, d.given];
  }
  if (d.middle !== undefined && record.middleInitial) {
    d.middle = d.middle[0];
  }
  if (record.dropSuffix) {
    d.suffix = undefined;
  }
  if (record.maiden === 'none') {
    d.maiden = undefined;
  } else if (d.maiden !== undefined) {
    d.maidenIn = record.maiden;
  }
  if (!record.sendsSsn) {
    d.ssn = undefined;
  }
  if (!record.sendsPhone) {
    d.phone = undefined;
  }
  if (!record.sendsEmail) {
    d.email = undefined;
  }
  if (!record.sendsAddress) {
    d.address = undefined;
  }
  if (!record.sendsMultipleBirth) {
    d.birthOrder = undefined;
  }
  return d;
}

const ERROR_WEIGHTS: Record<ErrorKind, number> = {
  typo: 30,
  nickname: 14,
  'dob-transposed': 6,
  'dob-digit': 8,
  'married-name': 10,
  'ssn-missing': 12,
  'ssn-digit': 5,
  'ssn-transposed': 3,
  moved: 14,
  'phone-changed': 8,
  'middle-missing': 10,
  'name-swap': 3,
};

/** Errors that exclude each other on one record. */
const EXCLUSIVE: readonly (readonly ErrorKind[])[] = [
  ['dob-transposed', 'dob-digit'],
  ['ssn-missing', 'ssn-digit', 'ssn-transposed'],
];

/** Life events come first: a typo is made on the name the person had at registration. */
const LIFE_EVENTS: ReadonlySet<ErrorKind> = new Set(['married-name', 'moved', 'phone-changed']);

const LATEST_BIRTH_YEAR = 2022;

class PopulationBuilder {
  private readonly maleGiven = Weighted.ranked(MALE_GIVEN);
  private readonly femaleGiven = Weighted.ranked(FEMALE_GIVEN);
  private readonly family = Weighted.ranked(FAMILY, 0.8, 10);
  private readonly cities = Weighted.ranked(CITIES, 0.7, 3);
  private readonly authorityWeights: Weighted<number>;
  private readonly usedSsns = new Set<string>();
  private readonly usedPhones = new Set<string>();
  private readonly commonBirths = new Set<string>();
  readonly persons: Person[] = [];
  readonly records: SourceRecord[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly options: GenerateOptions,
  ) {
    this.authorityWeights = new Weighted(
      options.authorities.map((_, i) => i),
      options.authorities.map((_, i) => 1 / (i + 1)),
    );
  }

  // --- people --------------------------------------------------------------------------------

  private givenName(sex: Sex): string {
    return (sex === 'F' ? this.femaleGiven : this.maleGiven).pick(this.rng);
  }

  private familyName(): string {
    return this.rng.chance(0.75)
      ? this.family.pick(this.rng)
      : this.rng.pick(SURNAME_HEADS) + this.rng.pick(SURNAME_TAILS);
  }

  private middleName(sex: Sex, given: string): string | undefined {
    if (!this.rng.chance(0.7)) {
      return undefined;
    }
    for (;;) {
      const middle = this.givenName(sex);
      if (middle !== given) {
        return middle;
      }
    }
  }

  private birthDate(minYear: number, maxYear: number): string {
    const year = this.rng.int(minYear, maxYear);
    const month = this.rng.int(1, 12);
    return formatDate(year, month, this.rng.int(1, daysInMonth(year, month)));
  }

  private ssn(): string {
    for (;;) {
      const ssn = randomSsn(this.rng);
      if (!this.usedSsns.has(ssn)) {
        this.usedSsns.add(ssn);
        return ssn;
      }
    }
  }

  /** `AAA555NNNN`; unique while the number space allows (households share on purpose). */
  private phone(city: City): string {
    let number = '';
    for (let attempt = 0; attempt < 12; attempt++) {
      const area =
        attempt < 4 && this.rng.chance(0.75) ? city.areaCode : this.rng.pick(EXTRA_AREA_CODES);
      number = `${area}555${String(this.rng.int(0, 9999)).padStart(4, '0')}`;
      if (!this.usedPhones.has(number)) {
        break;
      }
    }
    this.usedPhones.add(number);
    return number;
  }

  private address(near?: City): Address {
    const rng = this.rng;
    const city = near && rng.chance(0.7) ? near : this.cities.pick(rng);
    return {
      number: rng.chance(0.7) ? rng.int(1, 2999) : rng.int(3000, 19999),
      direction: rng.chance(0.15) ? rng.pick(DIRECTIONS) : undefined,
      street: rng.pick(STREET_NAMES),
      streetType: rng.int(0, STREET_TYPES.length - 1),
      unit: rng.chance(0.2)
        ? `${rng.int(1, 40)}${rng.chance(0.3) ? rng.pick(['A', 'B', 'C', 'D']) : ''}`
        : undefined,
      city,
      zip: `${city.zip3}${String(rng.int(1, 99)).padStart(2, '0')}`,
      zip4: String(rng.int(1, 9999)).padStart(4, '0'),
    };
  }

  private email(given: string, family: string): string {
    const clean = (s: string): string => s.toLowerCase().replace(/[^a-z]/g, '');
    const n = this.rng.int(1, 999);
    const local = this.rng.chance(0.5)
      ? `${clean(given)}.${clean(family)}${n}`
      : `${clean(given)[0]}${clean(family)}${n}`;
    return `${local}@${this.rng.pick(EMAIL_DOMAINS)}`;
  }

  /** First visit: not before birth, leaving time for later records and updates. */
  private firstSeen(birth: string): number {
    const born = Math.max(0, dateToSeconds(birth) + this.rng.int(0, 30) * DAY);
    const latest = Math.floor(WINDOW_SECONDS * 0.85);
    return born >= latest ? latest : this.rng.int(born, latest);
  }

  /** Moves and phone changes after the first visit. */
  private lifeEvents(person: Person): void {
    const rng = this.rng;
    const moves = rng.chance(0.3) ? (rng.chance(0.15) ? 2 : 1) : 0;
    for (let i = 0; i < moves; i++) {
      this.addMove(person, rng.int(person.firstSeen + DAY, WINDOW_SECONDS - DAY));
    }
    if (rng.chance(0.2)) {
      this.addPhoneChange(person, rng.int(person.firstSeen + DAY, WINDOW_SECONDS - DAY));
    }
    if (person.sex === 'F' && rng.chance(0.06)) {
      const at = rng.int(person.firstSeen + DAY, WINDOW_SECONDS - DAY);
      const age = ageAt(person.birth, at);
      if (age >= 20 && age <= 45) {
        this.marry(person, at);
      }
    }
  }

  private addMove(person: Person, at: number): void {
    const from = historyAt(person.addresses, at);
    person.addresses.push({ at, value: this.address(from.city) });
    person.addresses.sort((a, b) => a.at - b.at);
  }

  private addPhoneChange(person: Person, at: number): void {
    const city = historyAt(person.addresses, at).city;
    person.phones.push({ at, value: this.phone(city) });
    person.phones.sort((a, b) => a.at - b.at);
  }

  private marry(person: Person, at: number): void {
    let family = this.familyName();
    while (family === person.family) {
      family = this.familyName();
    }
    person.marriage = { at, family };
  }

  private newPerson(
    sex: Sex,
    given: string,
    family: string,
    birth: string,
    kind: Person['kind'],
  ): Person {
    const firstSeen = this.firstSeen(birth);
    const home = this.address();
    const person: Person = {
      id: `P${String(this.persons.length + 1).padStart(7, '0')}`,
      kind,
      sex,
      given,
      middle: this.middleName(sex, given),
      family,
      birth,
      ssn: this.ssn(),
      addresses: [{ at: 0, value: home }],
      phones: [{ at: 0, value: this.phone(home.city) }],
      firstSeen,
    };
    if (ageAt(birth, firstSeen) >= 16 && this.rng.chance(0.45)) {
      person.email = this.email(given, family);
    }
    this.persons.push(person);
    return person;
  }

  private regular(kind: Person['kind'] = ''): Person {
    const sex: Sex = this.rng.chance(0.5) ? 'F' : 'M';
    const person = this.newPerson(
      sex,
      this.givenName(sex),
      this.familyName(),
      this.birthDate(1926, LATEST_BIRTH_YEAR),
      kind,
    );
    this.lifeEvents(person);
    return person;
  }

  private twins(): [Person, Person] {
    const rng = this.rng;
    const a = this.regular('twin');
    const sex: Sex = rng.chance(0.5) ? a.sex : a.sex === 'F' ? 'M' : 'F';
    // A third of twin pairs get names with the same initial (JAYDEN/JOSHUA): harder.
    const sameInitial = rng.chance(0.35);
    let given = this.givenName(sex);
    for (
      let i = 0;
      i < 200 && (given === a.given || (sameInitial && given[0] !== a.given[0]));
      i++
    ) {
      given = this.givenName(sex);
    }
    while (given === a.given) {
      given = this.givenName(sex);
    }
    const b = this.newPerson(sex, given, a.family, a.birth, 'twin');
    b.addresses = a.addresses;
    b.phones = a.phones;
    b.firstSeen = a.firstSeen;
    a.birthOrder = 1;
    b.birthOrder = 2;
    if (b.email !== undefined) {
      b.email = this.email(b.given, b.family);
    }
    if (sex === 'F' && rng.chance(0.06)) {
      const at = rng.int(b.firstSeen + DAY, WINDOW_SECONDS - DAY);
      const age = ageAt(b.birth, at);
      if (age >= 20 && age <= 45) {
        this.marry(b, at);
      }
    }
    return [a, b];
  }

  private juniorSenior(): [Person, Person] {
    const rng = this.rng;
    const given = this.givenName('M');
    const family = this.familyName();
    const senior = this.newPerson('M', given, family, this.birthDate(1935, 1975), 'junior-senior');
    const gap = rng.int(25, 35);
    const juniorYear = Math.min(Number(senior.birth.slice(0, 4)) + gap, 2008);
    const junior = this.newPerson(
      'M',
      given,
      family,
      this.birthDate(juniorYear, juniorYear),
      'junior-senior',
    );
    senior.suffix = 'SR';
    junior.suffix = 'JR';
    if (rng.chance(0.4)) {
      (rng.chance(0.5) ? senior : junior).dropsSuffix = true;
    }
    junior.middle = rng.chance(0.9) ? senior.middle : junior.middle;
    this.lifeEvents(senior);
    junior.addresses = senior.addresses;
    if (rng.chance(0.6)) {
      junior.phones = senior.phones;
    }
    return [senior, junior];
  }

  private commonName(): Person {
    const name = this.rng.pick(COMMON_FULL_NAMES);
    let birth = this.birthDate(1930, LATEST_BIRTH_YEAR);
    while (this.commonBirths.has(`${name.given} ${name.family} ${birth}`)) {
      birth = this.birthDate(1930, LATEST_BIRTH_YEAR);
    }
    this.commonBirths.add(`${name.given} ${name.family} ${birth}`);
    const person = this.newPerson(name.sex, name.given, name.family, birth, 'common-name');
    this.lifeEvents(person);
    return person;
  }

  // --- records -------------------------------------------------------------------------------

  private newRecord(person: Person, authority: number, created: number): SourceRecord {
    const rng = this.rng;
    const record: SourceRecord = {
      index: this.records.length,
      person,
      authority,
      mrn: '',
      created,
      trigger: rng.chance(0.35) ? 'A01' : 'A04',
      sendsSsn: rng.chance(0.7),
      sendsPhone: rng.chance(0.93),
      sendsEmail: rng.chance(0.6),
      sendsAddress: rng.chance(0.97),
      sendsMultipleBirth: person.birthOrder !== undefined && rng.chance(0.5),
      middleInitial: rng.chance(0.25),
      maiden: rng.chance(0.45) ? 'none' : rng.chance(0.6) ? 'pid5' : 'pid6',
      dropSuffix: person.dropsSuffix === true && rng.chance(0.6),
      errors: [],
      edits: [],
      contactUntil: WINDOW_SECONDS,
      updates: [],
    };
    this.records.push(record);
    return record;
  }

  private authority(): number {
    return this.authorityWeights.pick(this.rng);
  }

  private otherAuthority(than: number): number {
    const n = this.options.authorities.length;
    if (n === 1) {
      return than;
    }
    for (;;) {
      const a = this.authority();
      if (a !== than) {
        return a;
      }
    }
  }

  /** First records for a unit of people (a pair of twins is often registered together). */
  private firstRecords(unit: Person[]): void {
    const rng = this.rng;
    const [a, b] = unit;
    const first = this.newRecord(a, this.authority(), a.firstSeen);
    if (b === undefined) {
      return;
    }
    if (a.kind === 'twin' && rng.chance(0.75)) {
      const second = this.newRecord(b, first.authority, a.firstSeen + rng.int(60, 3600));
      second.trigger = first.trigger;
    } else if (a.kind === 'junior-senior' && rng.chance(0.5)) {
      this.newRecord(b, first.authority, b.firstSeen);
    } else {
      this.newRecord(b, this.authority(), b.firstSeen);
    }
  }

  /** A duplicate record of `original`'s person, with its errors. */
  duplicate(original: SourceRecord): SourceRecord {
    const rng = this.rng;
    const person = original.person;
    const earliest = original.created + DAY;
    const created =
      earliest >= WINDOW_SECONDS - DAY ? WINDOW_SECONDS - 1 : rng.int(earliest, WINDOW_SECONDS - 1);
    const same =
      this.options.authorities.length === 1 || rng.chance(this.options.sameAuthorityRate);
    const dup = this.newRecord(
      person,
      same ? original.authority : this.otherAuthority(original.authority),
      created,
    );
    dup.original = original;

    const count = pickCount(rng);
    const chosen: ErrorKind[] = [];
    for (let i = 0; i < count; i++) {
      const candidates = ERROR_KINDS.filter(
        (k) =>
          !chosen.includes(k) &&
          !EXCLUSIVE.some((group) => group.includes(k) && group.some((g) => chosen.includes(g))) &&
          this.applicable(k, original, dup),
      );
      if (candidates.length === 0) {
        break;
      }
      chosen.push(
        new Weighted(
          candidates,
          candidates.map((k) => ERROR_WEIGHTS[k]),
        ).pick(rng),
      );
    }
    chosen.sort((x, y) => Number(LIFE_EVENTS.has(y)) - Number(LIFE_EVENTS.has(x)));
    for (const kind of chosen) {
      if (this.apply(kind, original, dup, chosen)) {
        dup.errors.push(kind);
      }
    }
    return dup;
  }

  private applicable(kind: ErrorKind, original: SourceRecord, dup: SourceRecord): boolean {
    const person = dup.person;
    const gap = dup.created - original.created;
    switch (kind) {
      case 'nickname':
        return NICKNAMES.has(person.given);
      case 'dob-transposed':
        return transposeDayMonth(person.birth) !== undefined;
      case 'married-name': {
        if (person.sex !== 'F' || person.marriage !== undefined || gap < 2 * DAY) {
          return false;
        }
        const age = ageAt(person.birth, dup.created);
        return age >= 19 && age <= 60;
      }
      case 'ssn-missing':
        return original.sendsSsn;
      case 'moved':
      case 'phone-changed':
        return gap >= 2 * DAY;
      case 'middle-missing':
        return person.middle !== undefined;
      case 'typo':
      case 'dob-digit':
      case 'ssn-digit':
      case 'ssn-transposed':
      case 'name-swap':
        return true;
    }
  }

  private apply(
    kind: ErrorKind,
    original: SourceRecord,
    dup: SourceRecord,
    chosen: readonly ErrorKind[],
  ): boolean {
    const rng = this.rng;
    const person = dup.person;
    const taken = (ssn: string): boolean => this.usedSsns.has(ssn);
    const between = (): number => rng.int(original.created + DAY, dup.created - DAY);
    switch (kind) {
      case 'typo': {
        const now = personAt(person, dup.created);
        const field = chosen.includes('nickname') || rng.chance(0.6) ? 'family' : 'given';
        dup.edits.push({ kind: 'name', field, from: now[field], to: typo(rng, now[field]) });
        return true;
      }
      case 'nickname': {
        const nicks = NICKNAMES.get(person.given) ?? [];
        dup.edits.push({ kind: 'name', field: 'given', from: person.given, to: rng.pick(nicks) });
        return true;
      }
      case 'dob-transposed': {
        const to = transposeDayMonth(person.birth);
        if (to !== undefined) {
          dup.edits.push({ kind: 'birth', to });
        }
        return to !== undefined;
      }
      case 'dob-digit':
        dup.edits.push({ kind: 'birth', to: birthDigitOff(rng, person.birth, LATEST_BIRTH_YEAR) });
        return true;
      case 'married-name': {
        const at = between();
        this.marry(person, at);
        original.contactUntil = Math.min(original.contactUntil, at);
        if (dup.maiden === 'none' && rng.chance(0.5)) {
          dup.maiden = rng.chance(0.6) ? 'pid5' : 'pid6';
        }
        return true;
      }
      case 'ssn-missing':
        dup.sendsSsn = false;
        return true;
      case 'ssn-digit':
        dup.sendsSsn = true;
        dup.edits.push({ kind: 'ssn', to: ssnDigitOff(rng, person.ssn, taken) });
        return true;
      case 'ssn-transposed': {
        const to = ssnTransposed(rng, person.ssn, taken);
        if (to === undefined) {
          return false;
        }
        dup.sendsSsn = true;
        dup.edits.push({ kind: 'ssn', to });
        return true;
      }
      case 'moved': {
        const at = between();
        this.addMove(person, at);
        original.contactUntil = Math.min(original.contactUntil, at);
        dup.sendsAddress = true;
        original.sendsAddress = true;
        return true;
      }
      case 'phone-changed': {
        const at = between();
        this.addPhoneChange(person, at);
        original.contactUntil = Math.min(original.contactUntil, at);
        dup.sendsPhone = true;
        original.sendsPhone = true;
        return true;
      }
      case 'middle-missing':
        dup.edits.push({ kind: 'drop-middle' });
        return true;
      case 'name-swap':
        dup.edits.push({ kind: 'swap-names' });
        return true;
    }
  }

  /** A08 times: soon after the person's life events (when the facility sees them), or random. */
  private scheduleUpdates(record: SourceRecord): void {
    const rng = this.rng;
    let count = poisson(rng, this.options.messagesPerPerson - 1);
    const from = record.created + 3600;
    const until = Math.min(record.contactUntil, WINDOW_SECONDS) - 1;
    if (count === 0 || until <= from) {
      return;
    }
    const person = record.person;
    const events = [
      ...person.addresses.slice(1).map((e) => e.at),
      ...person.phones.slice(1).map((e) => e.at),
      ...(person.marriage ? [person.marriage.at] : []),
    ].sort((x, y) => x - y);
    const times: number[] = [];
    for (const at of events) {
      if (count === 0) {
        break;
      }
      const t = at + rng.int(1, 90) * DAY;
      if (at >= record.created && t >= from && t <= until && rng.chance(0.85)) {
        times.push(t);
        count--;
      }
    }
    for (; count > 0; count--) {
      times.push(rng.int(from, until));
    }
    record.updates = times.sort((x, y) => x - y);
  }

  build(): Plan {
    const { people, twinsRate, juniorSeniorRate, commonNameRate, duplicateRate } = this.options;
    const rng = this.rng;
    const twinPairs = Math.round((people * twinsRate) / 2);
    const jsPairs = Math.round((people * juniorSeniorRate) / 2);
    const common = Math.round(people * commonNameRate);
    const regular = people - 2 * twinPairs - 2 * jsPairs - common;
    if (regular < 0) {
      throw new RangeError('twins, junior/senior and common-name rates add up to more than 1');
    }
    const units: HardNegativeKind[] = rng.shuffle([
      ...Array<HardNegativeKind>(twinPairs).fill('twin'),
      ...Array<HardNegativeKind>(jsPairs).fill('junior-senior'),
      ...Array<HardNegativeKind>(common).fill('common-name'),
    ]);
    // Spread the hard negatives evenly among the regular people.
    const slots = new Map<number, HardNegativeKind>();
    units.forEach((kind, i) => {
      slots.set(Math.floor(((i + 0.5) * (regular + units.length)) / units.length), kind);
    });
    const total = regular + units.length;
    for (let slot = 0; slot < total; slot++) {
      const kind = slots.get(slot);
      switch (kind) {
        case 'twin':
          this.firstRecords(this.twins());
          break;
        case 'junior-senior':
          this.firstRecords(this.juniorSenior());
          break;
        case 'common-name':
          this.firstRecords([this.commonName()]);
          break;
        case undefined:
          this.firstRecords([this.regular()]);
          break;
      }
    }

    const firstOf = this.records.slice();
    const order = rng.shuffle(firstOf.map((_, i) => i));
    const duplicated = Math.min(firstOf.length, Math.round(people * duplicateRate));
    for (let i = 0; i < duplicated; i++) {
      const original = firstOf[order[i]];
      this.duplicate(original);
      if (rng.chance(0.1)) {
        this.duplicate(original);
      }
    }
    for (const record of this.records) {
      this.scheduleUpdates(record);
    }
    this.assignMrns();
    return {
      persons: this.persons,
      records: this.records,
      duplicatedPersons: duplicated,
      twinPairs,
      juniorSeniorPairs: jsPairs,
      commonNamePersons: common,
    };
  }

  /** MRNs rise with registration time at each authority; each authority has its own format. */
  private assignMrns(): void {
    const rng = this.rng;
    const byTime = this.records.slice().sort((x, y) => x.created - y.created || x.index - y.index);
    const counters = this.options.authorities.map(() => rng.int(100000, 3000000));
    for (const record of byTime) {
      const a = record.authority;
      counters[a] += rng.int(1, 3);
      const n = counters[a];
      switch (a % 3) {
        case 0:
          record.mrn = String(n).padStart(8, '0');
          break;
        case 1:
          record.mrn = String(n);
          break;
        default:
          record.mrn = `M${String(n).padStart(7, '0')}`;
          break;
      }
    }
  }
}

/** Poisson-distributed count with mean `mean` (Knuth; mean is small here). */
function poisson(rng: Rng, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

/** Errors per duplicate: 0 (an exact re-registration) to 3. */
function pickCount(rng: Rng): number {
  const x = rng.next();
  return x < 0.1 ? 0 : x < 0.55 ? 1 : x < 0.85 ? 2 : 3;
}

export function planPopulation(options: GenerateOptions, rng: Rng): Plan {
  return new PopulationBuilder(rng, options).build();
}
