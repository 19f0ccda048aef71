/**
 * Column values as the two drivers return them: PostgreSQL gives `Date` for timestamptz and
 * objects for jsonb; SQLite gives 'YYYY-MM-DD HH:MM:SS.SSS' (UTC) text and JSON text.
 */

export function toDate(v: unknown): Date {
  if (v instanceof Date) {
    return v;
  }
  const s = String(v);
  return new Date(s.includes('T') ? s : `${s.replace(' ', 'T')}Z`);
}

export function fromJson<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}
