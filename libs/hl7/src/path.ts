import { Hl7ParseError } from './errors';

/**
 * A parsed HL7 path, all numbers 1-based:
 * `SEG(occurrence)-field[repetition].component.subcomponent`, e.g. `PID-3[2].4.1`, `OBX(2)-5`.
 * `repetition` is undefined when the path does not name one (get() then reads the first,
 * set() replaces the whole field).
 */
export interface Hl7Path {
  readonly segment: string;
  readonly occurrence: number;
  readonly field: number;
  readonly repetition: number | undefined;
  readonly component: number | undefined;
  readonly subcomponent: number | undefined;
}

/** The part after the segment: `3[2].4.1`. */
export type FieldPath = Omit<Hl7Path, 'segment' | 'occurrence'>;

const PATH_RE = /^([A-Za-z0-9]{1,3})(?:\((\d+)\))?[-.](\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?$/;
const FIELD_RE = /^(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?$/;

const cache = new Map<string, Hl7Path>();
const fieldCache = new Map<string, FieldPath>();
const CACHE_LIMIT = 10_000;

function positive(text: string | undefined, path: string): number | undefined {
  if (text === undefined) {
    return undefined;
  }
  const n = Number(text);
  if (n < 1 || !Number.isSafeInteger(n)) {
    throw new Hl7ParseError('BAD_PATH', `Invalid HL7 path '${path}': positions are 1-based`);
  }
  return n;
}

/** Parse (and cache) a path such as `PID-3[2].4.1`. Throws Hl7ParseError('BAD_PATH'). */
export function parsePath(path: string): Hl7Path {
  const hit = cache.get(path);
  if (hit !== undefined) {
    return hit;
  }
  const m = PATH_RE.exec(path);
  if (m === null) {
    throw new Hl7ParseError(
      'BAD_PATH',
      `Invalid HL7 path '${path}' (expected e.g. PID-3, PID-3[2].4.1, OBX(2)-5)`,
    );
  }
  const parsed: Hl7Path = {
    segment: m[1].toUpperCase(),
    occurrence: positive(m[2], path) ?? 1,
    field: positive(m[3], path) ?? 1,
    repetition: positive(m[4], path),
    component: positive(m[5], path),
    subcomponent: positive(m[6], path),
  };
  if (cache.size >= CACHE_LIMIT) {
    cache.clear();
  }
  cache.set(path, parsed);
  return parsed;
}

/** Parse a field path relative to a segment (`3`, `3[2].4.1`). Throws BAD_PATH. */
export function parseFieldPath(path: string | number): FieldPath {
  if (typeof path === 'number') {
    if (path < 1 || !Number.isSafeInteger(path)) {
      throw new Hl7ParseError('BAD_PATH', `Invalid field number ${path}: positions are 1-based`);
    }
    return { field: path, repetition: undefined, component: undefined, subcomponent: undefined };
  }
  const hit = fieldCache.get(path);
  if (hit !== undefined) {
    return hit;
  }
  const m = FIELD_RE.exec(path);
  if (m === null) {
    throw new Hl7ParseError(
      'BAD_PATH',
      `Invalid HL7 field path '${path}' (expected e.g. 3[2].4.1)`,
    );
  }
  const parsed: FieldPath = {
    field: positive(m[1], path) ?? 1,
    repetition: positive(m[2], path),
    component: positive(m[3], path),
    subcomponent: positive(m[4], path),
  };
  if (fieldCache.size >= CACHE_LIMIT) {
    fieldCache.clear();
  }
  fieldCache.set(path, parsed);
  return parsed;
}

/** Format a path back to text (for error locations). */
export function formatPath(p: Hl7Path): string {
  let s = p.segment;
  if (p.occurrence !== 1) {
    s += `(${p.occurrence})`;
  }
  s += `-${p.field}`;
  if (p.repetition !== undefined) {
    s += `[${p.repetition}]`;
  }
  if (p.component !== undefined) {
    s += `.${p.component}`;
    if (p.subcomponent !== undefined) {
      s += `.${p.subcomponent}`;
    }
  }
  return s;
}
