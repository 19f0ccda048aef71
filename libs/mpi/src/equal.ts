/**
 * Structural equality of JSON-like values: key order is ignored (PostgreSQL `jsonb` reorders
 * keys) and a property set to `undefined` counts as absent. Dates compare by time.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    return false;
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (Array.isArray(a) !== Array.isArray(b)) {
    return false;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) {
      return false;
    }
    for (let i = 0; i < a.length; i++) {
      if (!jsonEqual(a[i], b[i])) {
        return false;
      }
    }
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let defined = 0;
  for (const k in ao) {
    if (ao[k] === undefined) {
      continue;
    }
    defined++;
    if (!jsonEqual(ao[k], bo[k])) {
      return false;
    }
  }
  for (const k in bo) {
    if (bo[k] !== undefined) {
      defined--;
    }
  }
  return defined === 0;
}

/** A copy without `undefined` properties (what survives a JSON round trip), shallow. */
export function definedOnly<T extends object>(o: T): T {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) {
      out[k] = v;
    }
  }
  return out as T;
}
