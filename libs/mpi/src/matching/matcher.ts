import {
  MISSING,
  compareBirthDate,
  compareEmail,
  compareExact,
  compareFamily,
  compareFamilyWithAliases,
  compareFuzzy,
  compareGiven,
  compareIdentifier,
  compareMiddle,
  comparePhone,
  comparePostcode,
  compareStreet,
} from './comparators';
import type { PreparedRecord } from './features';
import {
  FIELDS,
  FIELD_INDEX,
  type CompiledParams,
  type ComparisonVector,
  type FieldName,
  type MatchParams,
  compileParams,
  hasVeto,
  newVector,
  scoreVector,
  vetoedFields,
} from './fellegi-sunter';
import type { MatchRecord } from './record';

export type MatchDecision = 'auto-link' | 'review' | 'no-match';

/** Flags returned by {@link compareInto}. */
export const NAMES_SWAPPED = 1;
export const ADDRESS_LINES_SWAPPED = 2;

const G = FIELD_INDEX.given;
const F = FIELD_INDEX.family;

// Level indices used by the swap rules: a given name at or above `jw88`, a family name at or
// above `jw88`, a street at or above `jw88`, a line 2 at or above `fuzzy`.
const GIVEN_GOOD = 4;
const FAMILY_GOOD = 3;
const STREET_GOOD = 2;
const FUZZY_GOOD = 1;

function goodCount(
  a: number,
  aGood: number,
  aElse: number,
  b: number,
  bGood: number,
  bElse: number,
): { good: number; bad: number } {
  return {
    good: (a !== MISSING && a <= aGood ? 1 : 0) + (b !== MISSING && b <= bGood ? 1 : 0),
    bad: (a === aElse ? 1 : 0) + (b === bElse ? 1 : 0),
  };
}

function firstChar(v: { compact: string } | string | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v[0] : v.compact[0];
}

/**
 * Cheap gate before comparing crosswise (two more Jaro–Winkler calls): at least one crossed pair
 * of values starts with the same character. A swap with a typing error in the first letter of
 * both values is missed; two unrelated records cost two character comparisons instead of two
 * string comparisons.
 */
function crossPlausible(
  a1: { compact: string } | string | undefined,
  b1: { compact: string } | string | undefined,
  a2: { compact: string } | string | undefined,
  b2: { compact: string } | string | undefined,
): boolean {
  const x = firstChar(a1);
  const y = firstChar(a2);
  return (x !== undefined && x === firstChar(b1)) || (y !== undefined && y === firstChar(b2));
}

/**
 * Compares two prepared records field by field into `out` (one level index per field of
 * `FIELDS`, -1 = missing) and returns flags: {@link NAMES_SWAPPED} when given and family names
 * were compared crosswise (entered in each other's field), {@link ADDRESS_LINES_SWAPPED} when the
 * street was compared with the other record's second address line.
 */
export function compareInto(a: PreparedRecord, b: PreparedRecord, out: ComparisonVector): number {
  const ra = a.record;
  const rb = b.record;
  let flags = 0;

  let given = compareGiven(a.given, b.given);
  let family = compareFamilyWithAliases(a.family, a.familyAliases, b.family, b.familyAliases);
  const straight = goodCount(given, GIVEN_GOOD, 7, family, FAMILY_GOOD, 5);
  if (
    straight.good < 2 &&
    straight.bad > 0 &&
    crossPlausible(a.given, b.family, a.family, b.given)
  ) {
    const cg = compareGiven(a.given, b.family);
    const cf = compareFamily(a.family, b.given);
    const crossed = goodCount(cg, GIVEN_GOOD, 7, cf, FAMILY_GOOD, 5);
    if (crossed.good > straight.good && crossed.bad === 0) {
      given = cg;
      family = cf;
      flags |= NAMES_SWAPPED;
    }
  }
  out[G] = given;
  out[F] = family;
  out[FIELD_INDEX.middle] = compareMiddle(a.middle, b.middle);
  out[FIELD_INDEX.suffix] = compareExact(ra.suffix, rb.suffix);
  out[FIELD_INDEX.birthDate] = compareBirthDate(a.birth, b.birth);
  out[FIELD_INDEX.sex] = compareExact(ra.sex, rb.sex);
  out[FIELD_INDEX.ssn] = compareIdentifier(ra.ssn, rb.ssn);
  out[FIELD_INDEX.nationalId] = compareIdentifier(ra.nationalId, rb.nationalId);
  out[FIELD_INDEX.streetNumber] = compareExact(ra.streetNumber, rb.streetNumber);

  let street = compareStreet(a.streetCompact, b.streetCompact);
  let line2 = compareFuzzy(a.line2Compact, b.line2Compact);
  const sStraight = goodCount(street, STREET_GOOD, 3, line2, FUZZY_GOOD, 2);
  if (
    sStraight.good < 2 &&
    sStraight.bad > 0 &&
    crossPlausible(a.streetCompact, b.line2Compact, a.line2Compact, b.streetCompact)
  ) {
    const cs = compareStreet(a.streetCompact, b.line2Compact);
    const cl = compareFuzzy(a.line2Compact, b.streetCompact);
    const crossed = goodCount(cs, STREET_GOOD, 3, cl, FUZZY_GOOD, 2);
    if (crossed.good > sStraight.good && crossed.bad === 0) {
      street = cs;
      line2 = cl;
      flags |= ADDRESS_LINES_SWAPPED;
    }
  }
  out[FIELD_INDEX.street] = street;
  out[FIELD_INDEX.line2] = line2;
  out[FIELD_INDEX.city] = compareFuzzy(ra.city, rb.city);
  out[FIELD_INDEX.postcode] = comparePostcode(ra.postcode, rb.postcode);
  out[FIELD_INDEX.state] = compareExact(ra.state, rb.state);
  out[FIELD_INDEX.phone] = comparePhone(ra.phone, rb.phone);
  out[FIELD_INDEX.email] = compareEmail(ra.email, a.emailLocal, rb.email, b.emailLocal);
  out[FIELD_INDEX.birthOrder] = compareExact(ra.birthOrder, rb.birthOrder);
  return flags;
}

/** Why a pair that scored at or above `autoLink` was still not auto-linked. */
export type HoldReason =
  'same-authority' | 'multiple-birth' | 'no-birth-date' | `veto:${FieldName}`;

export function sameAuthority(a: MatchRecord, b: MatchRecord): boolean {
  return a.authority !== '' && a.authority === b.authority;
}

const D = FIELD_INDEX.birthDate;
const SSN = FIELD_INDEX.ssn;
const NID = FIELD_INDEX.nationalId;

/**
 * Birth date missing on either side and no identifier (SSN, national id) agreeing exactly: the
 * pair has no anchor that tells a father from his son of the same name and address.
 */
function lacksAnchor(vector: ComparisonVector): boolean {
  return vector[D] === MISSING && vector[SSN] !== 0 && vector[NID] !== 0;
}

/** Either record flags a multiple birth and the given names are not exact or nicknames. */
function multipleBirthRisk(
  a: PreparedRecord,
  b: PreparedRecord,
  vector: ComparisonVector,
): boolean {
  return (a.record.multipleBirth === true || b.record.multipleBirth === true) && vector[G] > 1;
}

/**
 * Why an automatic link is not allowed for this pair, whatever its score: the same non-empty
 * assigning authority (a same-facility duplicate always goes to a person), a vetoing level (a
 * different given name, an unrelated birth date, a different sex, a Jr/Sr or birth-order
 * conflict), no birth date and no agreeing identifier, or a multiple birth flagged on either
 * record without an exact or nickname given name agreement.
 */
export function holdReasons(
  a: PreparedRecord,
  b: PreparedRecord,
  vector: ComparisonVector,
  compiled: CompiledParams,
): HoldReason[] {
  const reasons: HoldReason[] = [];
  if (sameAuthority(a.record, b.record)) {
    reasons.push('same-authority');
  }
  for (const field of vetoedFields(vector, compiled)) {
    reasons.push(`veto:${field}`);
  }
  if (lacksAnchor(vector)) {
    reasons.push('no-birth-date');
  }
  if (multipleBirthRisk(a, b, vector)) {
    reasons.push('multiple-birth');
  }
  return reasons;
}

function isHeld(
  a: PreparedRecord,
  b: PreparedRecord,
  vector: ComparisonVector,
  compiled: CompiledParams,
): boolean {
  return (
    sameAuthority(a.record, b.record) ||
    hasVeto(vector, compiled) ||
    lacksAnchor(vector) ||
    multipleBirthRisk(a, b, vector)
  );
}

export function decide(score: number, held: boolean, compiled: CompiledParams): MatchDecision {
  const { autoLink, review } = compiled.thresholds;
  if (score >= autoLink) {
    return held ? 'review' : 'auto-link';
  }
  return score >= review ? 'review' : 'no-match';
}

const compiledCache = new WeakMap<MatchParams, CompiledParams>();

/** Compiles (once per params object) unless given compiled params already. */
export function compiledOf(params: CompiledParams | MatchParams): CompiledParams {
  if ('weights' in params) {
    return params;
  }
  let compiled = compiledCache.get(params);
  if (compiled === undefined) {
    compiled = compileParams(params);
    compiledCache.set(params, compiled);
  }
  return compiled;
}

/** One field of a score, laid out for a medical records technician. */
export interface BreakdownEntry {
  field: FieldName;
  label: string;
  /** The comparison level reached, or 'missing' (weight 0). */
  level: string;
  /** log2(m/u) of the level; 0 when missing. */
  weight: number;
  /** The values compared (as normalized for matching); undefined when absent. */
  left?: string;
  right?: string;
  /** This level forbids an automatic link. */
  veto?: boolean;
  /** E.g. 'names swapped': the given name was compared with the other record's family name. */
  note?: string;
}

export interface PairScore {
  /** Sum of the field weights (log2 likelihood ratio). */
  score: number;
  decision: MatchDecision;
  /** Why an automatic link was held back (empty when none applies). */
  held: HoldReason[];
  breakdown: BreakdownEntry[];
}

function display(record: MatchRecord, field: FieldName): string | undefined {
  const v = record[field as keyof MatchRecord];
  if (v === undefined) {
    return undefined;
  }
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/**
 * Scores a pair and explains it: the score, the decision (auto-link at or above `autoLink`
 * unless held back, review at or above `review`, else no-match) and the per-field breakdown.
 */
export function scorePair(
  a: PreparedRecord,
  b: PreparedRecord,
  params: CompiledParams | MatchParams,
): PairScore {
  const compiled = compiledOf(params);
  const vector = newVector();
  const flags = compareInto(a, b, vector);
  const score = scoreVector(vector, compiled);
  const held = holdReasons(a, b, vector, compiled);
  const breakdown: BreakdownEntry[] = FIELDS.map((spec, f) => {
    const field: FieldName = spec.name;
    const level = vector[f];
    const leftField: FieldName = field;
    let rightField: FieldName = field;
    let note: string | undefined;
    if (flags & NAMES_SWAPPED && (field === 'given' || field === 'family')) {
      rightField = field === 'given' ? 'family' : 'given';
      note = 'names swapped';
    }
    if (flags & ADDRESS_LINES_SWAPPED && (field === 'street' || field === 'line2')) {
      rightField = field === 'street' ? 'line2' : 'street';
      note = 'address lines swapped';
    }
    const entry: BreakdownEntry = {
      field,
      label: spec.label,
      level: level === MISSING ? 'missing' : spec.levels[level],
      weight: level === MISSING ? 0 : compiled.weights[f][level],
    };
    const left = display(a.record, leftField);
    const right = display(b.record, rightField);
    if (left !== undefined) {
      entry.left = left;
    }
    if (right !== undefined) {
      entry.right = right;
    }
    if (level !== MISSING && compiled.vetoes[f][level] === 1) {
      entry.veto = true;
    }
    if (note !== undefined) {
      entry.note = note;
    }
    return entry;
  });
  return {
    score,
    decision: decide(score, held.length > 0, compiled),
    held,
    breakdown,
  };
}

/**
 * The hot-path variant of {@link scorePair}: score and decision only, comparing into one reusable
 * vector (no breakdown is built). Params are compiled once, in the constructor.
 */
export class PairScorer {
  private readonly vector = newVector();

  readonly compiled: CompiledParams;

  constructor(params: CompiledParams | MatchParams) {
    this.compiled = compiledOf(params);
  }

  score(a: PreparedRecord, b: PreparedRecord): { score: number; decision: MatchDecision } {
    compareInto(a, b, this.vector);
    const score = scoreVector(this.vector, this.compiled);
    return {
      score,
      decision: decide(score, isHeld(a, b, this.vector, this.compiled), this.compiled),
    };
  }

  /** The comparison vector of the last {@link score} call (valid until the next call). */
  lastVector(): ComparisonVector {
    return this.vector;
  }
}
