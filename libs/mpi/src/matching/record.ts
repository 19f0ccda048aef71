import type { Address, PatientRecord, PersonName, Telecom } from '../model';
import { isPlausibleSsn } from '../identity';

/**
 * What the matcher compares: one source record reduced to normalized, flat values. Plain data
 * (JSON-serializable), built once per source record by {@link fromPatientRecord}; the per-record
 * features used by the comparators (phonetic codes, nickname groups, …) are derived from it once
 * by `prepareRecord` (`features.ts`), never per pair.
 *
 * Conventions: names, streets, cities, states and postcodes are UPPER-CASE ASCII letters, digits
 * and single spaces (diacritics folded, punctuation dropped); e-mail is lower-case; SSN and phone
 * are digits only. An absent property is a missing value: it neither agrees nor disagrees.
 */
export interface MatchRecord {
  /** The source record id (the engine's `mpi_source_record.id`, or any id in evaluation). */
  id: string;
  /** Assigning authority of the record's MRN; '' when unknown. */
  authority: string;
  given?: string;
  /** Second and further given names. */
  middle?: string;
  family?: string;
  /** Other family names of the person (maiden, birth, alias), for married-name changes. */
  familyAliases?: string[];
  /** Generation suffix: JR, SR, II, III, IV, V (from XPN-4 or a trailing name token). */
  suffix?: string;
  /** `YYYY-MM-DD`, or partial `YYYY-MM` / `YYYY` at the precision sent. */
  birthDate?: string;
  /** F or M; O and U are treated as missing (they carry no evidence). */
  sex?: 'F' | 'M';
  /** Social security number, digits only; placeholders (000…, 123456789, …) are dropped. */
  ssn?: string;
  /** A national person identifier other than the SSN (PID-3 type NI/NN), A–Z and 0–9 only. */
  nationalId?: string;
  streetNumber?: string;
  /** Street name with the street type abbreviated (`WALLABY PL`), without the number. */
  street?: string;
  /** Second address line (unit, building, locality). */
  line2?: string;
  city?: string;
  /** Letters and digits only (`CL221AA`); a 9-digit US ZIP+4 is cut to its 5-digit ZIP. */
  postcode?: string;
  state?: string;
  /** Digits only, no leading `+`. */
  phone?: string;
  email?: string;
  /** PID-24 multiple birth indicator. */
  multipleBirth?: boolean;
  /** PID-25 birth order. */
  birthOrder?: number;
}

// ---------------------------------------------------------------------------------------------
// Normalization helpers (pure; blank or unusable input gives undefined)

/**
 * Upper-case ASCII letters, digits and single spaces: diacritics folded (`Müller` → `MULLER`),
 * apostrophes and dots dropped (`O'Brien` → `OBRIEN`, `k.c.` → `KC`), other punctuation (hyphens,
 * commas, slashes) turned into spaces.
 */
export function matchText(value: string | undefined | null): string | undefined {
  if (value == null) {
    return undefined;
  }
  const t = value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/['’`.]/g, '')
    .replace(/[^A-Z0-9]+/g, ' ')
    .trim();
  return t === '' ? undefined : t;
}

/** Generation suffixes, normalized (`JUNIOR` → `JR`, `2ND` → `II`). */
const GENERATIONS: Record<string, string> = {
  JR: 'JR',
  JNR: 'JR',
  JUNIOR: 'JR',
  SR: 'SR',
  SNR: 'SR',
  SENIOR: 'SR',
  I: 'I',
  '1ST': 'I',
  II: 'II',
  '2ND': 'II',
  III: 'III',
  '3RD': 'III',
  IV: 'IV',
  '4TH': 'IV',
  V: 'V',
  '5TH': 'V',
};

/** The normalized generation suffix of a token (`JUNIOR` → `JR`, `3RD` → `III`), else undefined. */
export function generationOf(token: string | undefined): string | undefined {
  return token === undefined ? undefined : GENERATIONS[token];
}

/**
 * A name part for matching: {@link matchText}, with a trailing generation suffix split off
 * (`SMITH JR` → `{ name: 'SMITH', suffix: 'JR' }`). A lone `I`/`V` is kept (an initial).
 */
export function splitGeneration(value: string | undefined | null): {
  name?: string;
  suffix?: string;
} {
  const t = matchText(value);
  if (t === undefined) {
    return {};
  }
  const tokens = t.split(' ');
  if (tokens.length > 1) {
    const last = tokens[tokens.length - 1];
    const gen = generationOf(last);
    // A trailing `I` or `V` is more often an initial than a generation: keep it in the name.
    if (gen !== undefined && last !== 'I' && last !== 'V') {
      return { name: tokens.slice(0, -1).join(' '), suffix: gen };
    }
  }
  return { name: t };
}

/**
 * Street type and directional abbreviations (USPS Publication 28 and Australia Post), applied per
 * token so `WALLABY PLACE` and `Wallaby Pl.` compare equal.
 */
const STREET_WORDS: Record<string, string> = {
  ALLEY: 'ALY',
  AVENUE: 'AVE',
  AV: 'AVE',
  AVE: 'AVE',
  AVN: 'AVE',
  BOULEVARD: 'BLVD',
  BVD: 'BLVD',
  CIRCLE: 'CIR',
  CIRCUIT: 'CCT',
  CLOSE: 'CL',
  COURT: 'CT',
  CRT: 'CT',
  CRESCENT: 'CRES',
  CRESC: 'CRES',
  DRIVE: 'DR',
  DRV: 'DR',
  ESPLANADE: 'ESP',
  EXPRESSWAY: 'EXPY',
  FREEWAY: 'FWY',
  GARDENS: 'GDNS',
  GROVE: 'GR',
  HIGHWAY: 'HWY',
  LANE: 'LN',
  PARADE: 'PDE',
  PARKWAY: 'PKWY',
  PLACE: 'PL',
  PLAZA: 'PLZ',
  ROAD: 'RD',
  SQUARE: 'SQ',
  STREET: 'ST',
  STR: 'ST',
  TERRACE: 'TCE',
  TRAIL: 'TRL',
  NORTH: 'N',
  SOUTH: 'S',
  EAST: 'E',
  WEST: 'W',
  NORTHEAST: 'NE',
  NORTHWEST: 'NW',
  SOUTHEAST: 'SE',
  SOUTHWEST: 'SW',
  APARTMENT: 'APT',
  SUITE: 'STE',
  UNIT: 'UNIT',
  FLOOR: 'FL',
  MOUNT: 'MT',
};

/** A street or address line: {@link matchText}, then type/directional words abbreviated. */
export function tidyStreet(value: string | undefined | null): string | undefined {
  const t = matchText(value);
  if (t === undefined) {
    return undefined;
  }
  return t
    .split(' ')
    .map((w) => STREET_WORDS[w] ?? w)
    .join(' ');
}

/** A leading house number: `12`, `12A`, `12-14`, `3/27` (unit/number); `PO BOX 12` has none. */
const HOUSE_NUMBER = /^(\d+[A-Z]?(?:[-/]\d+[A-Z]?)?)\s+(.*)$/;

/**
 * Splits a first address line into house number and street: `7 Wallaby Place` →
 * `{ number: '7', street: 'WALLABY PL' }`; a line without a leading number is all street.
 */
export function splitStreetLine(line: string | undefined | null): {
  number?: string;
  street?: string;
} {
  if (line == null) {
    return {};
  }
  const raw = line
    .normalize('NFKD')
    .toUpperCase()
    .replace(/[,#]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const m = HOUSE_NUMBER.exec(raw);
  if (m) {
    return { number: m[1].replace(/\s/g, ''), street: tidyStreet(m[2]) };
  }
  return { street: tidyStreet(raw) };
}

/** House number for comparison: upper-case letters and digits (`12 a` → `12A`). */
export function tidyHouseNumber(value: string | undefined | null): string | undefined {
  const t = value?.toUpperCase().replace(/[^A-Z0-9/-]/g, '');
  return t ? t : undefined;
}

/** Postcode: letters and digits upper-cased; a 9-digit ZIP+4 is cut to its ZIP. */
export function tidyPostcode(value: string | undefined | null): string | undefined {
  const t = value?.toUpperCase().replace(/[^A-Z0-9]/g, '');
  if (!t) {
    return undefined;
  }
  return /^\d{9}$/.test(t) ? t.slice(0, 5) : t;
}

/** Phone: digits only; fewer than 6 digits is no usable phone. */
export function tidyPhone(value: string | undefined | null): string | undefined {
  const d = value?.replace(/\D/g, '');
  return d && d.length >= 6 ? d : undefined;
}

/** E-mail: trimmed, lower-cased, `mailto:` dropped; needs one `@` with text on both sides. */
export function tidyEmail(value: string | undefined | null): string | undefined {
  const t = value
    ?.trim()
    .replace(/^mailto:/i, '')
    .toLowerCase();
  return t && /^[^@\s]+@[^@\s]+$/.test(t) ? t : undefined;
}

/**
 * SSN: digits only. A 9-digit value must be plausible (see `isPlausibleSsn`: no 000/666/9xx area,
 * no 00 group, no 0000 serial, not 123456789 or one repeated digit); other lengths (national
 * numbers of other schemes, test data) need ≥ 6 digits, not all the same.
 */
export function tidySsn(value: string | undefined | null): string | undefined {
  const d = value?.replace(/\D/g, '');
  if (!d) {
    return undefined;
  }
  if (d.length === 9) {
    return isPlausibleSsn(d) ? d : undefined;
  }
  return d.length >= 6 && !/^(\d)\1*$/.test(d) ? d : undefined;
}

/** A national identifier other than the SSN: A–Z and 0–9 only; at least 4 of them. */
export function tidyNationalId(value: string | undefined | null): string | undefined {
  const t = value?.toUpperCase().replace(/[^A-Z0-9]/g, '');
  return t && t.length >= 4 && !/^(.)\1*$/.test(t) ? t : undefined;
}

/**
 * Birth date for matching from an ISO date at any precision (`1962-03-05T10:00` →
 * `1962-03-05`, `1962-03` stays); anything that does not start with a 4-digit year → undefined.
 */
export function tidyBirthDate(value: string | undefined | null): string | undefined {
  const m = value == null ? null : /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value.trim());
  if (!m) {
    return undefined;
  }
  return [m[1], m[2], m[3]].filter((p) => p !== undefined).join('-');
}

// ---------------------------------------------------------------------------------------------
// PatientRecord → MatchRecord

function pickName(names: PersonName[] | null): PersonName | undefined {
  if (!names || names.length === 0) {
    return undefined;
  }
  return names.find((n) => n.type === 'L' && (n.family || n.given)) ?? names[0];
}

function pickAddress(addresses: Address[] | null): Address | undefined {
  if (!addresses || addresses.length === 0) {
    return undefined;
  }
  return addresses.find((a) => a.type === 'H') ?? addresses[0];
}

function pickPhone(telecom: Telecom[] | null): string | undefined {
  const phones = (telecom ?? []).filter((t) => t.system === 'phone');
  const best =
    phones.find((t) => t.use === 'home') ?? phones.find((t) => t.use === 'mobile') ?? phones[0];
  return tidyPhone(best?.value);
}

/**
 * Reduces a source record to what the matcher compares. `id` defaults to `authority|mrn`.
 * Name: the first legal name with a family or given name, else the first name; the other names'
 * family names (maiden, birth, alias) become `familyAliases`. Address: the first home address,
 * else the first. Phone: home, else mobile, else the first phone. SSN: the first PID-3/PID-19
 * identifier of type SS; national id: the first of type NI or NN.
 */
export function fromPatientRecord(record: PatientRecord, id?: string): MatchRecord {
  const out: MatchRecord = {
    id: id ?? `${record.authority}|${record.mrn ?? ''}`,
    authority: record.authority ?? '',
  };
  const name = pickName(record.names);
  if (name) {
    const family = splitGeneration(name.family);
    const given = splitGeneration(name.given);
    setIf(out, 'family', family.name);
    setIf(out, 'given', given.name);
    setIf(out, 'middle', matchText(name.middle));
    const suffix =
      (name.suffix ?? '')
        .toUpperCase()
        .split(/[^A-Z0-9]+/)
        .map(generationOf)
        .find((g) => g !== undefined) ??
      family.suffix ??
      given.suffix;
    setIf(out, 'suffix', suffix);
    const aliases = new Set<string>();
    for (const other of record.names ?? []) {
      if (other !== name && other.type !== 'N') {
        const f = splitGeneration(other.family).name;
        if (f !== undefined && f !== out.family) {
          aliases.add(f);
        }
      }
    }
    if (aliases.size > 0) {
      out.familyAliases = [...aliases];
    }
  }
  if (record.birthDate) {
    setIf(out, 'birthDate', tidyBirthDate(record.birthDate.value));
  }
  if (record.sex === 'F' || record.sex === 'M') {
    out.sex = record.sex;
  }
  const ss = record.identifiers.find((i) => i.type === 'SS' && i.value !== '');
  setIf(out, 'ssn', tidySsn(ss?.value));
  const ni = record.identifiers.find((i) => (i.type === 'NI' || i.type === 'NN') && i.value !== '');
  setIf(out, 'nationalId', tidyNationalId(ni?.value));
  const address = pickAddress(record.addresses);
  if (address) {
    const line = splitStreetLine(address.line1);
    setIf(out, 'streetNumber', tidyHouseNumber(line.number));
    setIf(out, 'street', line.street);
    setIf(out, 'line2', tidyStreet(address.line2));
    setIf(out, 'city', matchText(address.city));
    setIf(out, 'postcode', tidyPostcode(address.postalCode));
    setIf(out, 'state', matchText(address.state));
  }
  setIf(out, 'phone', pickPhone(record.telecom));
  setIf(out, 'email', tidyEmail((record.telecom ?? []).find((t) => t.system === 'email')?.value));
  if (record.multipleBirth?.indicator !== undefined) {
    out.multipleBirth = record.multipleBirth.indicator;
  }
  if (record.multipleBirth?.order !== undefined) {
    out.birthOrder = record.multipleBirth.order;
  }
  return out;
}

function setIf<K extends keyof MatchRecord>(
  out: MatchRecord,
  key: K,
  value: MatchRecord[K] | undefined,
): void {
  if (value !== undefined) {
    out[key] = value;
  }
}
