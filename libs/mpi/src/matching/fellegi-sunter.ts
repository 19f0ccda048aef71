import {
  AGREE_LEVELS,
  BIRTH_DATE_LEVELS,
  EMAIL_LEVELS,
  FAMILY_LEVELS,
  FUZZY_LEVELS,
  GIVEN_LEVELS,
  ID_LEVELS,
  MIDDLE_LEVELS,
  MISSING,
  PHONE_LEVELS,
  POSTCODE_LEVELS,
  STREET_LEVELS,
} from './comparators';

/**
 * Fellegi–Sunter scoring. A pair of records is compared field by field; each field lands on one
 * comparison level (or is missing). With m = P(level | same person) and u = P(level | different
 * persons), the level's weight is log2(m/u) and the pair's score is the sum of its fields'
 * weights (missing fields add 0). m, u and the match prior λ are estimated from unlabelled
 * candidate pairs by expectation–maximisation ({@link estimateEm}).
 */

export interface FieldSpec {
  name: string;
  /** What the field is, for a medical records technician reading a breakdown. */
  label: string;
  levels: readonly string[];
  /** Levels that forbid an automatic link whatever the score (the pair goes to review at most). */
  veto?: readonly string[];
  /** Not estimated by EM (rare in data; the shipped m/u are set by hand). */
  fixed?: boolean;
}

/** The compared fields, in comparison-vector order. */
export const FIELDS = [
  {
    name: 'given',
    label: 'Given name',
    levels: GIVEN_LEVELS,
    // Twins share surname, birth date and address: a given name that is different, or agrees
    // only by sound (JOHN / JOANNA) or by an initial, must never link automatically.
    veto: ['phonetic', 'initial', 'else'],
  },
  { name: 'family', label: 'Family name', levels: FAMILY_LEVELS },
  { name: 'middle', label: 'Middle name', levels: MIDDLE_LEVELS },
  {
    name: 'suffix',
    label: 'Generation (Jr/Sr)',
    levels: AGREE_LEVELS,
    veto: ['disagree'],
    fixed: true,
  },
  {
    name: 'birthDate',
    label: 'Birth date',
    levels: BIRTH_DATE_LEVELS,
    // Junior/senior share name and address: an unrelated birth date must never link.
    veto: ['else'],
  },
  { name: 'sex', label: 'Sex', levels: AGREE_LEVELS, veto: ['disagree'] },
  { name: 'ssn', label: 'SSN', levels: ID_LEVELS },
  { name: 'nationalId', label: 'National id', levels: ID_LEVELS },
  { name: 'streetNumber', label: 'House number', levels: AGREE_LEVELS },
  { name: 'street', label: 'Street', levels: STREET_LEVELS },
  { name: 'line2', label: 'Address line 2', levels: FUZZY_LEVELS },
  { name: 'city', label: 'City', levels: FUZZY_LEVELS },
  { name: 'postcode', label: 'Postal code', levels: POSTCODE_LEVELS },
  { name: 'state', label: 'State', levels: AGREE_LEVELS },
  { name: 'phone', label: 'Phone', levels: PHONE_LEVELS },
  { name: 'email', label: 'E-mail', levels: EMAIL_LEVELS },
  {
    name: 'birthOrder',
    label: 'Multiple-birth order',
    levels: AGREE_LEVELS,
    veto: ['disagree'],
    fixed: true,
  },
] as const satisfies readonly FieldSpec[];

export type FieldName = (typeof FIELDS)[number]['name'];

export const FIELD_NAMES: readonly FieldName[] = FIELDS.map((f) => f.name);
export const FIELD_COUNT = FIELDS.length;

/** Index of each field in a comparison vector. */
export const FIELD_INDEX = Object.fromEntries(FIELDS.map((f, i) => [f.name, i])) as Record<
  FieldName,
  number
>;

/** m and u of each level of one field (probabilities over the non-missing levels, each sums to 1). */
export interface FieldProbabilities {
  m: Record<string, number>;
  u: Record<string, number>;
}

export interface Thresholds {
  /** Score (log2 units) at or above which a candidate joins the person automatically. */
  autoLink: number;
  /** Score at or above which (and below `autoLink`) the pair goes to the review worklist. */
  review: number;
}

export interface MatchParams {
  /** λ: share of true matches among candidate pairs when the probabilities were estimated. */
  prior: number;
  fields: Record<FieldName, FieldProbabilities>;
  thresholds: Thresholds;
}

/** Smallest probability used in a weight (keeps log2(m/u) finite). */
export const MIN_PROBABILITY = 1e-6;

/**
 * `MatchParams` turned into lookup tables for the hot path. Weights are log2(m/u), except that no
 * level weighs more than the field's first (exact) level.
 */
export interface CompiledParams {
  params: MatchParams;
  /** weights[field][level] = log2(m/u). */
  weights: Float64Array[];
  /** vetoes[field][level] = 1 when that level forbids an automatic link. */
  vetoes: Uint8Array[];
  thresholds: Thresholds;
}

export function levelWeight(m: number, u: number): number {
  return Math.log2(Math.max(m, MIN_PROBABILITY) / Math.max(u, MIN_PROBABILITY));
}

export function compileParams(params: MatchParams): CompiledParams {
  const weights: Float64Array[] = [];
  const vetoes: Uint8Array[] = [];
  for (const field of FIELDS as readonly FieldSpec[]) {
    const probs = params.fields[field.name as FieldName];
    const w = new Float64Array(field.levels.length);
    const v = new Uint8Array(field.levels.length);
    field.levels.forEach((level, i) => {
      w[i] = levelWeight(probs.m[level] ?? 0, probs.u[level] ?? 0);
      // A near miss never counts for more than exact agreement. (With estimated u it can: two
      // random people share a common name more often than they nearly share it.)
      if (i > 0) {
        w[i] = Math.min(w[i], w[0]);
      }
      v[i] = field.veto?.includes(level) ? 1 : 0;
    });
    weights.push(w);
    vetoes.push(v);
  }
  return { params, weights, vetoes, thresholds: params.thresholds };
}

/** A comparison vector: one level index per field of {@link FIELDS}, {@link MISSING} = -1. */
export type ComparisonVector = Int8Array;

export function newVector(): ComparisonVector {
  return new Int8Array(FIELD_COUNT).fill(MISSING);
}

/** Sum of the level weights of a comparison vector. */
/**
 * Address and contact fields move together: a person who moves changes house number, street,
 * city, postal code, often phone and e-mail at once. Fellegi–Sunter assumes the fields are
 * independent and would count one move five or six times over, so their disagreements together
 * weigh at most {@link CONTACT_FLOOR} (agreements count in full).
 */
export const CONTACT_FIELDS: ReadonlySet<string> = new Set([
  'streetNumber',
  'street',
  'line2',
  'city',
  'postcode',
  'state',
  'phone',
  'email',
]);
export const CONTACT_FLOOR = -8;

const contactIndex: boolean[] = FIELDS.map((f) => CONTACT_FIELDS.has(f.name));

export function scoreVector(vector: ComparisonVector, compiled: CompiledParams): number {
  let score = 0;
  let contactPenalty = 0;
  const { weights } = compiled;
  for (let f = 0; f < vector.length; f++) {
    const level = vector[f];
    if (level >= 0) {
      const w = weights[f][level];
      if (w < 0 && contactIndex[f]) {
        contactPenalty += w;
      } else {
        score += w;
      }
    }
  }
  return score + Math.max(contactPenalty, CONTACT_FLOOR);
}

/** The fields whose level in this vector forbids an automatic link. */
export function vetoedFields(vector: ComparisonVector, compiled: CompiledParams): FieldName[] {
  const out: FieldName[] = [];
  for (let f = 0; f < vector.length; f++) {
    const level = vector[f];
    if (level >= 0 && compiled.vetoes[f][level] === 1) {
      out.push(FIELDS[f].name);
    }
  }
  return out;
}

export function hasVeto(vector: ComparisonVector, compiled: CompiledParams): boolean {
  for (let f = 0; f < vector.length; f++) {
    const level = vector[f];
    if (level >= 0 && compiled.vetoes[f][level] === 1) {
      return true;
    }
  }
  return false;
}

/**
 * P(match | score) for a pair drawn from a population where a share `prior` of pairs match:
 * log2 posterior odds = log2(prior / (1 − prior)) + score.
 */
export function matchProbability(score: number, prior: number): number {
  const logOdds = Math.log2(prior / (1 - prior)) + score;
  return 1 / (1 + 2 ** -logOdds);
}

// ---------------------------------------------------------------------------------------------
// Expectation–maximisation

/** Distinct comparison vectors with their counts (EM works on patterns, not on pairs). */
export class PatternCounts {
  private readonly index = new Map<string, number>();
  readonly patterns: ComparisonVector[] = [];
  readonly counts: number[] = [];
  total = 0;

  add(vector: ComparisonVector, count = 1): void {
    let key = '';
    for (let f = 0; f < vector.length; f++) {
      key += String.fromCharCode(66 + vector[f]);
    }
    const at = this.index.get(key);
    if (at === undefined) {
      this.index.set(key, this.patterns.length);
      this.patterns.push(Int8Array.from(vector));
      this.counts.push(count);
    } else {
      this.counts[at] += count;
    }
    this.total += count;
  }
}

export interface EmOptions {
  maxIterations?: number;
  /** Stop when no m, u or λ moves by more than this. */
  tolerance?: number;
  /** Keep u as given (estimated from random pairs, see {@link estimateU}); estimate m and λ. */
  fixU?: boolean;
  /** A field seen (non-missing) in fewer pairs than this keeps its initial m and u. */
  minObservations?: number;
  /** Pseudo-count added to every level, for m and u alike (no level gets probability 0). */
  smoothing?: number;
}

export interface EmResult {
  prior: number;
  fields: Record<FieldName, FieldProbabilities>;
  iterations: number;
  converged: boolean;
  /** Fields EM estimated (the others kept their initial values). */
  estimated: FieldName[];
}

function toArrays(probs: Record<FieldName, FieldProbabilities>, key: 'm' | 'u'): Float64Array[] {
  return FIELDS.map((field) => {
    const p = probs[field.name];
    return Float64Array.from(field.levels.map((l) => Math.max(p[key][l] ?? 0, MIN_PROBABILITY)));
  });
}

function fromArrays(m: Float64Array[], u: Float64Array[]): Record<FieldName, FieldProbabilities> {
  const out = {} as Record<FieldName, FieldProbabilities>;
  FIELDS.forEach((field, f) => {
    out[field.name] = {
      m: Object.fromEntries(field.levels.map((l, i) => [l, m[f][i]])),
      u: Object.fromEntries(field.levels.map((l, i) => [l, u[f][i]])),
    };
  });
  return out;
}

/**
 * Estimates m, u (per level) and the match prior λ from unlabelled comparison vectors by EM
 * under conditional independence of the fields (Winkler 1988; Jaro 1989). Missing levels are
 * skipped in both steps. `init` gives the starting point (and the values kept for fixed or
 * unobserved fields); it must have m > u on the agreeing levels so that the latent class that
 * EM calls "match" is the matching one.
 */
export function estimateEm(
  data: PatternCounts,
  init: { prior: number; fields: Record<FieldName, FieldProbabilities> },
  options: EmOptions = {},
): EmResult {
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-7;
  const minObservations = options.minObservations ?? 100;
  const smoothing = options.smoothing ?? 0.5;
  const m = toArrays(init.fields, 'm');
  const u = toArrays(init.fields, 'u');
  let prior = init.prior;

  const observed = FIELDS.map(() => 0);
  data.patterns.forEach((p, i) => {
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (p[f] >= 0) {
        observed[f] += data.counts[i];
      }
    }
  });
  const estimate = FIELDS.map(
    (field, f) => !(field as FieldSpec).fixed && observed[f] >= minObservations,
  );

  const n = data.patterns.length;
  const post = new Float64Array(n);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIterations) {
    iterations++;
    // E step: P(match | pattern), in log space.
    const logPrior = Math.log(prior);
    const logNon = Math.log(1 - prior);
    const logM = m.map((a) => a.map(Math.log));
    const logU = u.map((a) => a.map(Math.log));
    for (let i = 0; i < n; i++) {
      const p = data.patterns[i];
      let lm = logPrior;
      let lu = logNon;
      for (let f = 0; f < FIELD_COUNT; f++) {
        const level = p[f];
        if (level >= 0 && estimate[f]) {
          lm += logM[f][level];
          lu += logU[f][level];
        }
      }
      post[i] = 1 / (1 + Math.exp(lu - lm));
    }
    // M step.
    const mCounts = FIELDS.map((field) => new Float64Array(field.levels.length).fill(smoothing));
    const uCounts = FIELDS.map((field) => new Float64Array(field.levels.length).fill(smoothing));
    let matches = 0;
    for (let i = 0; i < n; i++) {
      const c = data.counts[i];
      const pm = post[i] * c;
      const pu = c - pm;
      matches += pm;
      const p = data.patterns[i];
      for (let f = 0; f < FIELD_COUNT; f++) {
        const level = p[f];
        if (level >= 0) {
          mCounts[f][level] += pm;
          uCounts[f][level] += pu;
        }
      }
    }
    let delta = 0;
    const newPrior = Math.min(Math.max(matches / data.total, 1e-9), 1 - 1e-9);
    delta = Math.max(delta, Math.abs(newPrior - prior));
    prior = newPrior;
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (!estimate[f]) {
        continue;
      }
      const mSum = mCounts[f].reduce((a, b) => a + b, 0);
      const uSum = uCounts[f].reduce((a, b) => a + b, 0);
      for (let l = 0; l < m[f].length; l++) {
        const nm = mCounts[f][l] / mSum;
        delta = Math.max(delta, Math.abs(nm - m[f][l]));
        m[f][l] = nm;
        if (!options.fixU) {
          const nu = uCounts[f][l] / uSum;
          delta = Math.max(delta, Math.abs(nu - u[f][l]));
          u[f][l] = nu;
        }
      }
    }
    if (delta < tolerance) {
      converged = true;
      break;
    }
  }
  return {
    prior,
    fields: fromArrays(m, u),
    iterations,
    converged,
    estimated: FIELDS.filter((_, f) => estimate[f]).map((f) => f.name),
  };
}

/**
 * u estimated from pairs drawn at random (almost all of them non-matches): the share of each
 * level among the pairs where the field is present, smoothed. Fields seen fewer than
 * `minObservations` times keep `fallback`'s u.
 */
export function estimateU(
  randomPairs: PatternCounts,
  fallback: Record<FieldName, FieldProbabilities>,
  minObservations = 100,
  smoothing = 0.5,
): Record<FieldName, FieldProbabilities> {
  const counts = FIELDS.map((field) => new Float64Array(field.levels.length));
  randomPairs.patterns.forEach((p, i) => {
    for (let f = 0; f < FIELD_COUNT; f++) {
      if (p[f] >= 0) {
        counts[f][p[f]] += randomPairs.counts[i];
      }
    }
  });
  const out = {} as Record<FieldName, FieldProbabilities>;
  FIELDS.forEach((field, f) => {
    const total = counts[f].reduce((a, b) => a + b, 0);
    const keep = total < minObservations || (field as FieldSpec).fixed === true;
    out[field.name] = {
      m: { ...fallback[field.name].m },
      u: keep
        ? { ...fallback[field.name].u }
        : Object.fromEntries(
            field.levels.map((l, i) => [
              l,
              (counts[f][i] + smoothing) / (total + smoothing * field.levels.length),
            ]),
          ),
    };
  });
  return out;
}
