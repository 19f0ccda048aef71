import doubleMetaphone from 'double-metaphone';
import jaroWinklerDistance from 'wink-distance/src/string-jaro-winkler';
import type { DateFeatures, NameFeatures } from './features';
import { nicknameEquivalent } from './nicknames';

/**
 * Comparators: each takes two values (or their precomputed features) and returns the index of
 * the first comparison level, in the order of its `*_LEVELS` list, that the pair reaches; or
 * {@link MISSING} when either value is absent (a missing value neither agrees nor disagrees:
 * it contributes weight 0). Levels go from strongest agreement to disagreement (`else`).
 */
export const MISSING = -1;

/** Jaro–Winkler similarity in [0, 1] (Winkler 1990: prefix ≤ 4, p = 0.1, boost above 0.7). */
export function jaroWinkler(a: string, b: string): number {
  if (a === b) {
    return a === '' ? 0 : 1;
  }
  if (a === '' || b === '') {
    return 0;
  }
  return 1 - jaroWinklerDistance(a, b);
}

/** Double Metaphone [primary, secondary] of a name (letters only; upper-cased). */
export function phoneticCodes(value: string): [string, string] {
  return doubleMetaphone(value.toUpperCase().replace(/[^A-Z]/g, ''));
}

/** True when the names share a non-empty Double Metaphone code (primary or secondary). */
export function phoneticMatch(a: NameFeatures, b: NameFeatures): boolean {
  if (a.dm1 === '' || b.dm1 === '') {
    return false;
  }
  return a.dm1 === b.dm1 || a.dm1 === b.dm2 || a.dm2 === b.dm1 || a.dm2 === b.dm2;
}

/** How two strings differ when they are one edit apart (Damerau–Levenshtein distance 1). */
export type EditKind = 'equal' | 'substitution' | 'transposition' | 'indel' | 'other';

/** Classifies the difference between two strings: equal, one edit of some kind, or more. */
export function editKind(a: string, b: string): EditKind {
  if (a === b) {
    return 'equal';
  }
  const la = a.length;
  const lb = b.length;
  if (la === lb) {
    let first = -1;
    let second = -1;
    for (let i = 0; i < la; i++) {
      if (a.charCodeAt(i) !== b.charCodeAt(i)) {
        if (first < 0) {
          first = i;
        } else if (second < 0) {
          second = i;
        } else {
          return 'other';
        }
      }
    }
    if (second < 0) {
      return 'substitution';
    }
    return second === first + 1 && a[first] === b[second] && a[second] === b[first]
      ? 'transposition'
      : 'other';
  }
  if (Math.abs(la - lb) !== 1) {
    return 'other';
  }
  const [s, l] = la < lb ? [a, b] : [b, a];
  let i = 0;
  while (i < s.length && s.charCodeAt(i) === l.charCodeAt(i)) {
    i++;
  }
  return s.slice(i) === l.slice(i + 1) ? 'indel' : 'other';
}

// ---------------------------------------------------------------------------------------------
// Names

export const GIVEN_LEVELS = [
  'exact',
  'nickname',
  'jw94',
  'partial',
  'jw88',
  'phonetic',
  'initial',
  'else',
] as const;

export const FAMILY_LEVELS = ['exact', 'jw94', 'partial', 'jw88', 'phonetic', 'else'] as const;

export const MIDDLE_LEVELS = ['exact', 'initial', 'jw88', 'else'] as const;

/** True when a token of one name (two letters or more) is a token of the other. */
function tokenOverlap(a: NameFeatures, b: NameFeatures): boolean {
  if (a.tokens.length === 1 && b.tokens.length === 1) {
    return false;
  }
  for (const t of a.tokens) {
    if (t.length > 1 && b.tokens.includes(t)) {
      return true;
    }
  }
  return false;
}

function isInitialOf(a: NameFeatures, b: NameFeatures): boolean {
  return (a.compact.length === 1 || b.compact.length === 1) && a.compact[0] === b.compact[0];
}

/**
 * Given name: exact (spaces ignored) / nickname (of the first tokens: `BOB` – `ROBERT`) /
 * Jaro–Winkler ≥ 0.94 / a shared token (`MARY ANN` – `ANN`) / Jaro–Winkler ≥ 0.88 / same Double
 * Metaphone code / one is the other's initial (`J` – `JOHN`, tested before the similarity levels)
 * / else.
 */
export function compareGiven(a: NameFeatures | undefined, b: NameFeatures | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a.compact === b.compact) {
    return 0;
  }
  if (nicknameEquivalent(a.tokens[0], a.nick, b.tokens[0], b.nick)) {
    return 1;
  }
  if (isInitialOf(a, b)) {
    return 6;
  }
  const jw = jaroWinkler(a.compact, b.compact);
  if (jw >= 0.94) {
    return 2;
  }
  if (tokenOverlap(a, b)) {
    return 3;
  }
  if (jw >= 0.88) {
    return 4;
  }
  return phoneticMatch(a, b) ? 5 : 7;
}

/** Family name: exact / JW ≥ 0.94 / a shared token (double-barrelled) / JW ≥ 0.88 / phonetic / else. */
export function compareFamily(a: NameFeatures | undefined, b: NameFeatures | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a.compact === b.compact) {
    return 0;
  }
  const jw = jaroWinkler(a.compact, b.compact);
  if (jw >= 0.94) {
    return 1;
  }
  if (tokenOverlap(a, b)) {
    return 2;
  }
  if (jw >= 0.88) {
    return 3;
  }
  return phoneticMatch(a, b) ? 4 : 5;
}

/** Family name against the other record's family name and aliases: the best level wins. */
export function compareFamilyWithAliases(
  a: NameFeatures | undefined,
  aAliases: readonly NameFeatures[],
  b: NameFeatures | undefined,
  bAliases: readonly NameFeatures[],
): number {
  let best = compareFamily(a, b);
  if (best === 0 || (aAliases.length === 0 && bAliases.length === 0)) {
    return best;
  }
  const as = a === undefined ? aAliases : [a, ...aAliases];
  const bs = b === undefined ? bAliases : [b, ...bAliases];
  for (const x of as) {
    for (const y of bs) {
      if (x === a && y === b) {
        continue;
      }
      const level = compareFamily(x, y);
      if (level !== MISSING && (best === MISSING || level < best)) {
        best = level;
      }
    }
  }
  return best;
}

/** Middle name: exact / one is the other's initial / JW ≥ 0.88 / else. */
export function compareMiddle(a: NameFeatures | undefined, b: NameFeatures | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a.compact === b.compact) {
    return 0;
  }
  if (isInitialOf(a, b)) {
    return 1;
  }
  return jaroWinkler(a.compact, b.compact) >= 0.88 ? 2 : 3;
}

// ---------------------------------------------------------------------------------------------
// Birth date

export const BIRTH_DATE_LEVELS = [
  'exact',
  'day-month-swapped',
  'year-off-by-one',
  'one-digit',
  'partial',
  'else',
] as const;

/**
 * Birth date: exact / day and month transposed (`1956-04-09` – `1956-09-04`) / year off by one
 * with the same month and day / one digit different or two adjacent digits swapped (a typing
 * error) / equal at the precision of the less precise one (`1956` – `1956-04-09`) / else.
 */
export function compareBirthDate(a: DateFeatures | undefined, b: DateFeatures | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a.digits === b.digits) {
    return 0;
  }
  if (a.digits.length !== b.digits.length) {
    const n = Math.min(a.digits.length, b.digits.length);
    return a.digits.slice(0, n) === b.digits.slice(0, n) ? 4 : 5;
  }
  if (a.digits.length === 8) {
    if (a.year === b.year && a.month === b.day && a.day === b.month) {
      return 1;
    }
    if (Math.abs(a.year - b.year) === 1 && a.month === b.month && a.day === b.day) {
      return 2;
    }
  }
  const kind = editKind(a.digits, b.digits);
  return kind === 'substitution' || kind === 'transposition' ? 3 : 5;
}

// ---------------------------------------------------------------------------------------------
// Identifiers, phone, e-mail, sex, codes

export const ID_LEVELS = ['exact', 'one-digit', 'transposed', 'else'] as const;

/**
 * SSN or another identifier: exact / one character off (substituted, or one dropped or added) /
 * two adjacent characters transposed / else.
 */
export function compareIdentifier(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  switch (editKind(a, b)) {
    case 'equal':
      return 0;
    case 'substitution':
    case 'indel':
      return 1;
    case 'transposition':
      return 2;
    case 'other':
      return 3;
  }
}

export const PHONE_LEVELS = ['exact', 'last7', 'typo', 'else'] as const;

/**
 * Phone: exact / the same last 7 digits (area or country code differs or is missing) / one
 * typing error (one digit off, dropped, added or two adjacent swapped) / else.
 */
export function comparePhone(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a === b) {
    return 0;
  }
  if (a.length >= 7 && b.length >= 7 && a.slice(-7) === b.slice(-7)) {
    return 1;
  }
  return editKind(a, b) === 'other' ? 3 : 2;
}

export const EMAIL_LEVELS = ['exact', 'local', 'fuzzy', 'else'] as const;

/** E-mail: exact / same local part, other domain / JW ≥ 0.9 (a typo) / else. */
export function compareEmail(
  a: string | undefined,
  aLocal: string | undefined,
  b: string | undefined,
  bLocal: string | undefined,
): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a === b) {
    return 0;
  }
  if (aLocal !== undefined && aLocal !== '' && aLocal === bLocal) {
    return 1;
  }
  return jaroWinkler(a, b) >= 0.9 ? 2 : 3;
}

export const AGREE_LEVELS = ['agree', 'disagree'] as const;

/** Exact agreement of a code (sex, state, house number): agree / disagree. */
export function compareExact(
  a: string | number | undefined,
  b: string | number | undefined,
): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  return a === b ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Address

export const STREET_LEVELS = ['exact', 'jw94', 'jw88', 'else'] as const;

/** Street (compact, abbreviated): exact / JW ≥ 0.94 / JW ≥ 0.88 / else. */
export function compareStreet(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a === b) {
    return 0;
  }
  const jw = jaroWinkler(a, b);
  return jw >= 0.94 ? 1 : jw >= 0.88 ? 2 : 3;
}

export const FUZZY_LEVELS = ['exact', 'fuzzy', 'else'] as const;

/** City or second address line: exact / JW ≥ 0.9 / else. */
export function compareFuzzy(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  if (a === b) {
    return 0;
  }
  return jaroWinkler(a, b) >= 0.9 ? 1 : 2;
}

export const POSTCODE_LEVELS = ['exact', 'typo', 'else'] as const;

/** Postcode: exact / one character off or two adjacent swapped (`4881` – `4818`) / else. */
export function comparePostcode(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) {
    return MISSING;
  }
  const kind = editKind(a, b);
  return kind === 'equal' ? 0 : kind === 'other' ? 2 : 1;
}
