import { MISSING } from './comparators';
import {
  FIELDS,
  FIELD_INDEX,
  PatternCounts,
  compileParams,
  estimateEm,
  estimateU,
  levelWeight,
  matchProbability,
  newVector,
  scoreVector,
  type FieldName,
  type FieldProbabilities,
} from './fellegi-sunter';
import { DEFAULT_PARAMS } from './defaults';
import { initialProbabilities } from './hand-set';

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function draw(probs: number[], r: number): number {
  let acc = 0;
  for (let i = 0; i < probs.length; i++) {
    acc += probs[i];
    if (r < acc) {
      return i;
    }
  }
  return probs.length - 1;
}

// Truth for the synthetic population: four fields, the others never observed.
const TRUTH: Partial<Record<FieldName, { m: number[]; u: number[] }>> = {
  given: {
    m: [0.7, 0.05, 0.08, 0.01, 0.04, 0.02, 0.01, 0.09],
    u: [0.01, 0.005, 0.005, 0.002, 0.01, 0.02, 0.003, 0.945],
  },
  family: { m: [0.75, 0.1, 0.01, 0.05, 0.02, 0.07], u: [0.02, 0.005, 0.002, 0.01, 0.02, 0.943] },
  birthDate: {
    m: [0.85, 0.02, 0.02, 0.05, 0.01, 0.05],
    u: [0.01, 0.001, 0.003, 0.01, 0.001, 0.975],
  },
  postcode: { m: [0.8, 0.12, 0.08], u: [0.05, 0.05, 0.9] },
};
const LAMBDA = 0.2;

function synthetic(n: number, seed: number): PatternCounts {
  const r = rng(seed);
  const counts = new PatternCounts();
  for (let i = 0; i < n; i++) {
    const match = r() < LAMBDA;
    const v = newVector();
    for (const [field, t] of Object.entries(TRUTH)) {
      // 10 % of values missing on either side.
      if (r() < 0.1) {
        continue;
      }
      v[FIELD_INDEX[field as FieldName]] = draw(match ? t.m : t.u, r());
    }
    counts.add(v);
  }
  return counts;
}

function levelsOf(field: FieldName): readonly string[] {
  return FIELDS[FIELD_INDEX[field]].levels;
}

describe('expectation–maximisation', () => {
  const data = synthetic(40000, 7);

  it('recovers m, u and λ from unlabelled pairs', () => {
    const result = estimateEm(data, { prior: 0.5, fields: initialProbabilities() });
    expect(result.converged).toBe(true);
    expect(result.prior).toBeCloseTo(LAMBDA, 1);
    expect(Math.abs(result.prior - LAMBDA)).toBeLessThan(0.01);
    expect(result.estimated.sort()).toEqual(['birthDate', 'family', 'given', 'postcode']);
    for (const [field, t] of Object.entries(TRUTH)) {
      const got = result.fields[field as FieldName];
      levelsOf(field as FieldName).forEach((level, i) => {
        expect(Math.abs(got.m[level] - t.m[i])).toBeLessThan(0.02);
        expect(Math.abs(got.u[level] - t.u[i])).toBeLessThan(0.01);
      });
    }
  });

  it('keeps the initial values of fields it never observed', () => {
    const init = initialProbabilities();
    const result = estimateEm(data, { prior: 0.5, fields: init });
    expect(result.fields.ssn).toEqual(init.ssn);
    expect(result.fields.suffix).toEqual(init.suffix);
  });

  it('with u fixed (from random pairs) estimates m and λ', () => {
    const init = initialProbabilities();
    // Random pairs: the non-match distribution.
    const r = rng(99);
    const random = new PatternCounts();
    for (let i = 0; i < 40000; i++) {
      const v = newVector();
      for (const [field, t] of Object.entries(TRUTH)) {
        v[FIELD_INDEX[field as FieldName]] = draw(t.u, r());
      }
      random.add(v);
    }
    const fields = estimateU(random, init);
    expect(Math.abs(fields.postcode.u.exact - 0.05)).toBeLessThan(0.005);
    expect(fields.ssn.u).toEqual(init.ssn.u); // not observed: fallback kept
    const result = estimateEm(data, { prior: 0.5, fields }, { fixU: true });
    expect(result.fields.postcode.u).toEqual(fields.postcode.u);
    expect(Math.abs(result.prior - LAMBDA)).toBeLessThan(0.015);
    expect(Math.abs(result.fields.given.m.exact - 0.7)).toBeLessThan(0.02);
  });
});

describe('weights and scores', () => {
  it('weight = log2(m/u), floored probabilities', () => {
    expect(levelWeight(0.9, 0.01)).toBeCloseTo(Math.log2(90), 10);
    expect(levelWeight(0.01, 0.9)).toBeCloseTo(-Math.log2(90), 10);
    expect(Number.isFinite(levelWeight(0, 0.5))).toBe(true);
  });

  it('scores the sum of the level weights; a missing field adds 0', () => {
    const fields = initialProbabilities();
    const compiled = compileParams({ prior: 0.1, fields, thresholds: { autoLink: 10, review: 0 } });
    const v = newVector();
    expect(scoreVector(v, compiled)).toBe(0);
    v[FIELD_INDEX.given] = 0;
    v[FIELD_INDEX.postcode] = 2;
    const expected =
      levelWeight(fields.given.m.exact, fields.given.u.exact) +
      levelWeight(fields.postcode.m.else, fields.postcode.u.else);
    expect(scoreVector(v, compiled)).toBeCloseTo(expected, 10);
    v[FIELD_INDEX.postcode] = MISSING;
    expect(scoreVector(v, compiled)).toBeCloseTo(
      levelWeight(fields.given.m.exact, fields.given.u.exact),
      10,
    );
  });

  it('never lets a near miss outweigh exact agreement', () => {
    const fields = initialProbabilities();
    fields.family = {
      m: { exact: 0.6, jw94: 0.2, partial: 0.01, jw88: 0.05, phonetic: 0.01, else: 0.13 },
      u: { exact: 0.01, jw94: 0.0001, partial: 0.001, jw88: 0.001, phonetic: 0.01, else: 0.977 },
    };
    const compiled = compileParams({ prior: 0.1, fields, thresholds: { autoLink: 10, review: 0 } });
    const w = compiled.weights[FIELD_INDEX.family];
    expect(w[0]).toBeCloseTo(Math.log2(60), 10);
    expect(w[1]).toBe(w[0]); // log2(2000) capped
    expect(w[3]).toBeCloseTo(Math.log2(50), 10);
    for (const weights of compileParams(DEFAULT_PARAMS).weights) {
      expect(Math.max(...weights)).toBe(weights[0]);
    }
  });

  it('marks the vetoing levels', () => {
    const compiled = compileParams(DEFAULT_PARAMS);
    const veto = (f: FieldName, level: string) =>
      compiled.vetoes[FIELD_INDEX[f]][levelsOf(f).indexOf(level)];
    expect(veto('given', 'else')).toBe(1);
    expect(veto('given', 'nickname')).toBe(0);
    expect(veto('birthDate', 'else')).toBe(1);
    expect(veto('suffix', 'disagree')).toBe(1);
    expect(veto('sex', 'disagree')).toBe(1);
    expect(veto('family', 'else')).toBe(0);
  });

  it('turns a score into a posterior probability', () => {
    expect(matchProbability(0, 0.5)).toBeCloseTo(0.5, 10);
    expect(matchProbability(10, 0.5)).toBeCloseTo(1024 / 1025, 10);
    expect(matchProbability(Math.log2(99), 0.01)).toBeCloseTo(0.5, 10);
  });
});

describe('shipped defaults', () => {
  const fields: Record<FieldName, FieldProbabilities> = DEFAULT_PARAMS.fields;

  it('agreeing is evidence for a match, disagreeing against, for every field', () => {
    for (const spec of FIELDS) {
      const p = fields[spec.name];
      const first = spec.levels[0];
      const last = spec.levels[spec.levels.length - 1];
      expect(levelWeight(p.m[first], p.u[first])).toBeGreaterThan(0);
      expect(levelWeight(p.m[last], p.u[last])).toBeLessThan(0);
    }
  });

  it('no single field reaches the auto-link threshold alone', () => {
    const compiled = compileParams(DEFAULT_PARAMS);
    for (const w of compiled.weights) {
      expect(Math.max(...w)).toBeLessThan(DEFAULT_PARAMS.thresholds.autoLink);
    }
  });

  it('a different given name weighs clearly against a match', () => {
    const p = fields.given;
    expect(levelWeight(p.m.else, p.u.else)).toBeLessThan(-2);
  });
});
