import { DEFAULT_PARAMS } from './defaults';
import {
  FIELDS,
  type FieldName,
  type FieldProbabilities,
  type FieldSpec,
  type MatchParams,
  type Thresholds,
} from './fellegi-sunter';

/**
 * Matching settings as they appear in config (`matching:` in `config/engine.yaml`): overrides of
 * the shipped m/u per field and level, and the two thresholds. Every field and level is optional
 * in `m`/`u`; what is not given keeps the shipped default.
 *
 * ```yaml
 * matching:
 *   thresholds: { autoLink: 24, review: 8 }
 *   m: { given: { nickname: 0.05 } }
 *   u: { ssn: { exact: 0.0000002 } }
 * ```
 */
export interface MatchingConfig {
  m?: Partial<Record<FieldName, Partial<Record<string, number>>>>;
  u?: Partial<Record<FieldName, Partial<Record<string, number>>>>;
  thresholds: Thresholds;
}

export class MatchingConfigError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'MatchingConfigError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FIELD_SPECS = FIELDS as readonly FieldSpec[];

function validateProbabilities(
  value: unknown,
  path: string,
): Partial<Record<FieldName, Partial<Record<string, number>>>> {
  if (!isObject(value)) {
    throw new MatchingConfigError(path, 'must be a mapping of field → level → probability');
  }
  const out: Partial<Record<FieldName, Partial<Record<string, number>>>> = {};
  for (const [field, levels] of Object.entries(value)) {
    const spec = FIELD_SPECS.find((f) => f.name === field);
    if (spec === undefined) {
      throw new MatchingConfigError(
        `${path}.${field}`,
        `unknown field (one of ${FIELD_SPECS.map((f) => f.name).join(', ')})`,
      );
    }
    if (!isObject(levels)) {
      throw new MatchingConfigError(`${path}.${field}`, 'must be a mapping of level → probability');
    }
    const probs: Partial<Record<string, number>> = {};
    for (const [level, p] of Object.entries(levels)) {
      if (!spec.levels.includes(level)) {
        throw new MatchingConfigError(
          `${path}.${field}.${level}`,
          `unknown level (one of ${spec.levels.join(', ')})`,
        );
      }
      if (typeof p !== 'number' || !Number.isFinite(p) || p <= 0 || p >= 1) {
        throw new MatchingConfigError(
          `${path}.${field}.${level}`,
          'must be a probability strictly between 0 and 1',
        );
      }
      probs[level] = p;
    }
    out[field as FieldName] = probs;
  }
  return out;
}

/**
 * Validates matching settings read from config (any shape) and returns them typed; throws a
 * {@link MatchingConfigError} naming the path of the first bad key.
 */
export function validateMatchingConfig(value: unknown, path = 'matching'): MatchingConfig {
  if (!isObject(value)) {
    throw new MatchingConfigError(path, 'must be a mapping');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'm' && key !== 'u' && key !== 'thresholds') {
      throw new MatchingConfigError(`${path}.${key}`, 'unknown key (m, u, thresholds)');
    }
  }
  const t = value.thresholds;
  if (!isObject(t)) {
    throw new MatchingConfigError(`${path}.thresholds`, 'must be { autoLink, review }');
  }
  for (const key of Object.keys(t)) {
    if (key !== 'autoLink' && key !== 'review') {
      throw new MatchingConfigError(`${path}.thresholds.${key}`, 'unknown key (autoLink, review)');
    }
  }
  const { autoLink, review } = t;
  if (typeof autoLink !== 'number' || !Number.isFinite(autoLink)) {
    throw new MatchingConfigError(`${path}.thresholds.autoLink`, 'must be a number');
  }
  if (typeof review !== 'number' || !Number.isFinite(review)) {
    throw new MatchingConfigError(`${path}.thresholds.review`, 'must be a number');
  }
  if (review > autoLink) {
    throw new MatchingConfigError(`${path}.thresholds.review`, 'must not be above autoLink');
  }
  const out: MatchingConfig = { thresholds: { autoLink, review } };
  if (value.m !== undefined) {
    out.m = validateProbabilities(value.m, `${path}.m`);
  }
  if (value.u !== undefined) {
    out.u = validateProbabilities(value.u, `${path}.u`);
  }
  return out;
}

/**
 * The parameters to score with: the shipped defaults (or `base`), with the config's m/u overrides
 * and thresholds applied. An overridden level keeps the other levels' probabilities as they are
 * (weights are ratios, so the levels need not sum exactly to 1).
 */
export function resolveMatchParams(
  config?: MatchingConfig,
  base: MatchParams = DEFAULT_PARAMS,
): MatchParams {
  const fields = {} as Record<FieldName, FieldProbabilities>;
  for (const spec of FIELD_SPECS) {
    const name = spec.name as FieldName;
    fields[name] = {
      m: { ...base.fields[name].m, ...(config?.m?.[name] ?? {}) } as Record<string, number>,
      u: { ...base.fields[name].u, ...(config?.u?.[name] ?? {}) } as Record<string, number>,
    };
  }
  return {
    prior: base.prior,
    fields,
    thresholds: config?.thresholds ?? base.thresholds,
  };
}
