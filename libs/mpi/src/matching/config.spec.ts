import { MatchingConfigError, resolveMatchParams, validateMatchingConfig } from './config';
import { DEFAULT_PARAMS } from './defaults';

function errorOf(value: unknown): MatchingConfigError {
  try {
    validateMatchingConfig(value);
  } catch (err) {
    if (err instanceof MatchingConfigError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected a MatchingConfigError');
}

describe('validateMatchingConfig', () => {
  it('accepts thresholds with optional m/u overrides', () => {
    const cfg = validateMatchingConfig({
      thresholds: { autoLink: 24, review: 8 },
      m: { given: { nickname: 0.05 } },
      u: { ssn: { exact: 0.00002 } },
    });
    expect(cfg).toEqual({
      thresholds: { autoLink: 24, review: 8 },
      m: { given: { nickname: 0.05 } },
      u: { ssn: { exact: 0.00002 } },
    });
  });

  it.each([
    [null, 'matching', 'must be a mapping'],
    [{}, 'matching.thresholds', 'must be { autoLink, review }'],
    [{ thresholds: { autoLink: 'x', review: 1 } }, 'matching.thresholds.autoLink', 'number'],
    [{ thresholds: { autoLink: 5, review: 6 } }, 'matching.thresholds.review', 'above'],
    [{ thresholds: { autoLink: 5, review: 1, extra: 1 } }, 'matching.thresholds.extra', 'unknown'],
    [{ thresholds: { autoLink: 5, review: 1 }, w: {} }, 'matching.w', 'unknown key'],
    [{ thresholds: { autoLink: 5, review: 1 }, m: { nom: {} } }, 'matching.m.nom', 'unknown field'],
    [
      { thresholds: { autoLink: 5, review: 1 }, u: { given: { fuzzy: 0.1 } } },
      'matching.u.given.fuzzy',
      'unknown level',
    ],
    [
      { thresholds: { autoLink: 5, review: 1 }, m: { given: { exact: 1.5 } } },
      'matching.m.given.exact',
      'probability',
    ],
    [{ thresholds: { autoLink: 5, review: 1 }, m: [] }, 'matching.m', 'mapping'],
  ])('rejects %j at %s', (value, path, message) => {
    const err = errorOf(value);
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
  });
});

describe('resolveMatchParams', () => {
  it('returns the shipped defaults without config', () => {
    expect(resolveMatchParams()).toEqual(DEFAULT_PARAMS);
  });

  it('overrides only the given levels and the thresholds', () => {
    const p = resolveMatchParams({
      thresholds: { autoLink: 30, review: 10 },
      u: { ssn: { exact: 0.001 } },
    });
    expect(p.thresholds).toEqual({ autoLink: 30, review: 10 });
    expect(p.fields.ssn.u.exact).toBe(0.001);
    expect(p.fields.ssn.u.else).toBe(DEFAULT_PARAMS.fields.ssn.u.else);
    expect(p.fields.ssn.m).toEqual(DEFAULT_PARAMS.fields.ssn.m);
    expect(DEFAULT_PARAMS.fields.ssn.u.exact).not.toBe(0.001); // defaults untouched
  });
});
