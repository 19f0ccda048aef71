import { FIELDS, type FieldName, type FieldProbabilities, type Thresholds } from './fellegi-sunter';

/**
 * The hand-set part of the shipped parameters: the thresholds, and m/u for the fields none of the
 * evaluation data sets carries (so EM cannot estimate them). `defaults.ts` (generated) combines
 * these with the EM estimates.
 */

/**
 * Score thresholds (log2 units). Chosen on FEBRL1 and FEBRL2 (not the target sets) as the
 * lowest auto-link threshold with no false automatic link there, and a review threshold that keeps
 * the review queue small; see docs/matching.md.
 */
export const DEFAULT_THRESHOLDS: Thresholds = { autoLink: 30, review: 6 };

/**
 * Middle name (no data set has one): agreement as informative as a given name's, an initial
 * mildly so, a different middle name mildly against (middle names are often dropped or swapped).
 * Generation suffix and multiple-birth order: agreement adds a little, disagreement is strongly
 * against and also a veto (never auto-linked).
 */
export const HAND_SET: Pick<
  Record<FieldName, FieldProbabilities>,
  'middle' | 'suffix' | 'birthOrder'
> = {
  middle: {
    m: { exact: 0.8, initial: 0.1, jw88: 0.04, else: 0.06 },
    u: { exact: 0.02, initial: 0.05, jw88: 0.01, else: 0.92 },
  },
  suffix: {
    m: { agree: 0.98, disagree: 0.02 },
    u: { agree: 0.5, disagree: 0.5 },
  },
  birthOrder: {
    m: { agree: 0.99, disagree: 0.01 },
    u: { agree: 0.5, disagree: 0.5 },
  },
};

/**
 * Floor on every u of the shipped defaults. EM on the public data sets finds no chance agreement
 * at all on some levels (two different people with the same SSN, phone or e-mail), and would ship
 * the smoothing pseudo-count (≈ 1e-6, i.e. +19 bits for one field). In a hospital index shared
 * or mistyped identifiers, family phones and e-mails do occur; the floor caps what one field can
 * contribute at log2(1 / 1e-5) ≈ 16.6 bits, below `autoLink`: no single field links on its own.
 */
export const U_FLOOR = 1e-5;

/**
 * Levels that are real in hospital data but that the evaluation data sets never (or hardly ever)
 * produce: FEBRL corrupts records by typing errors, not by nicknames, swapped day and month or
 * initials, so EM sees almost no matching pairs on them and its m (or u) is the smoothing
 * pseudo-count, not a measurement. The generator applies these values after EM; each is a
 * judgement, documented in docs/matching.md.
 */
export const HAND_SET_LEVELS: Partial<
  Record<FieldName, Record<string, { m?: number; u?: number }>>
> = {
  given: {
    // Bob/Robert: a few per cent of duplicate pairs carry a nickname in one record
    // (weight ≈ +4.9 bits with the random-pair u of ≈ 0.001).
    nickname: { m: 0.03 },
    // "J" vs "JOHN": the initial agrees for ~90 % of true pairs where one record has only an
    // initial, and by chance for ~1 in 12 others: a likelihood ratio of ~12 (≈ +3.6 bits).
    initial: { m: 0.0005, u: 0.00004 },
  },
  birthDate: {
    // Day/month transposition and a year off by one are the commonest birth date slips after
    // a single wrong digit.
    'day-month-swapped': { m: 0.01 },
    'year-off-by-one': { m: 0.01 },
  },
};

/** Generic starting point for EM: agreement levels likely for matches, unlikely otherwise. */
export function initialProbabilities(): Record<FieldName, FieldProbabilities> {
  const out = {} as Record<FieldName, FieldProbabilities>;
  for (const field of FIELDS) {
    const levels = field.levels as readonly string[];
    const k = levels.length;
    const m: Record<string, number> = {};
    const u: Record<string, number> = {};
    levels.forEach((level, i) => {
      if (k === 2) {
        m[level] = i === 0 ? 0.9 : 0.1;
        u[level] = i === 0 ? 0.1 : 0.9;
      } else if (i === 0) {
        m[level] = 0.7;
        u[level] = 0.01;
      } else if (i === k - 1) {
        m[level] = 0.05;
        u[level] = 0.9;
      } else {
        m[level] = 0.25 / (k - 2);
        u[level] = 0.09 / (k - 2);
      }
    });
    out[field.name] = { m, u };
  }
  return { ...out, ...HAND_SET };
}
