import { isValidDate, parseDate } from './dates';
import {
  birthDigitOff,
  isPlausibleSsn,
  randomSsn,
  ssnDigitOff,
  ssnTransposed,
  transposeDayMonth,
  typo,
} from './mutate';
import { Rng, Weighted } from './rng';

/** Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
function osa(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

describe('Rng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const seq = (seed: string): number[] => {
      const rng = new Rng(seed);
      return Array.from({ length: 20 }, () => rng.uint32());
    };
    expect(seq('42')).toEqual(seq('42'));
    expect(seq('42')).not.toEqual(seq('43'));
  });

  it('stays in range and is roughly uniform', () => {
    const rng = new Rng('u');
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40000; i++) {
      const n = rng.int(0, 3);
      counts[n]++;
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    for (const c of counts) {
      expect(Math.abs(c - 10000)).toBeLessThan(500);
    }
  });

  it('picks weighted items in proportion', () => {
    const w = new Weighted(['a', 'b'], [3, 1]);
    const rng = new Rng('w');
    let a = 0;
    for (let i = 0; i < 20000; i++) {
      a += w.pick(rng) === 'a' ? 1 : 0;
    }
    expect(a / 20000).toBeCloseTo(0.75, 1);
  });
});

describe('data-entry errors', () => {
  const rng = new Rng('mutate');

  it('a typo is one insert, delete, substitution or transposition away', () => {
    for (const name of ['SMITH', 'GARCIA', "O'BRIEN", 'LI', 'JOHNSON', 'MARY']) {
      for (let i = 0; i < 200; i++) {
        const out = typo(rng, name);
        expect(out).not.toBe(name);
        expect(osa(out, name)).toBe(1);
        expect(out).toMatch(/^[A-Z]/);
      }
    }
  });

  it('transposes day and month only when that gives another valid date', () => {
    expect(transposeDayMonth('19800305')).toBe('19800503');
    expect(transposeDayMonth('19801203')).toBe('19800312');
    expect(transposeDayMonth('19800513')).toBeUndefined();
    expect(transposeDayMonth('19800404')).toBeUndefined();
  });

  it('a birth date one digit off is valid, plausible and differs in exactly one digit', () => {
    for (const birth of ['19800305', '20200229', '19311231', '20220101']) {
      for (let i = 0; i < 200; i++) {
        const out = birthDigitOff(rng, birth, 2022);
        const { year, month, day } = parseDate(out);
        expect(isValidDate(year, month, day)).toBe(true);
        expect(year).toBeGreaterThanOrEqual(1900);
        expect(year).toBeLessThanOrEqual(2022);
        expect([...out].filter((c, k) => c !== birth[k])).toHaveLength(1);
      }
    }
  });

  it('generates plausible fake SSNs only', () => {
    expect(isPlausibleSsn('123456789')).toBe(true);
    for (const bad of [
      '000123456',
      '666123456',
      '912345678',
      '111111111',
      '123004567',
      '123450000',
      '12345678',
    ]) {
      expect(isPlausibleSsn(bad)).toBe(false);
    }
    for (let i = 0; i < 5000; i++) {
      expect(isPlausibleSsn(randomSsn(rng))).toBe(true);
    }
  });

  it('SSN errors stay plausible, avoid taken numbers and differ as described', () => {
    const taken = new Set(['123456780']);
    for (let i = 0; i < 500; i++) {
      const ssn = randomSsn(rng);
      const digit = ssnDigitOff(rng, ssn, (s) => taken.has(s));
      expect(isPlausibleSsn(digit)).toBe(true);
      expect([...digit].filter((c, k) => c !== ssn[k])).toHaveLength(1);
      const swapped = ssnTransposed(rng, ssn, (s) => taken.has(s));
      if (swapped !== undefined) {
        expect(isPlausibleSsn(swapped)).toBe(true);
        expect(osa(swapped, ssn)).toBe(1);
        expect([...swapped].sort().join('')).toBe([...ssn].sort().join(''));
      }
    }
    expect(ssnDigitOff(rng, '123456789', (s) => s === '123456780')).not.toBe('123456780');
  });
});
