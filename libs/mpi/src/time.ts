import type { DateValue } from './model';

const ISO =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * Epoch milliseconds of a normalized date (`DateValue.value`), at the start of its precision.
 * A value without an offset is read as UTC: one sender's times stay comparable with each other,
 * which is all the staleness check needs. Undefined when the value does not parse.
 */
export function dateValueToMs(value: DateValue | string | undefined | null): number | undefined {
  const text = typeof value === 'string' ? value : value?.value;
  if (!text) {
    return undefined;
  }
  const m = ISO.exec(text);
  if (!m) {
    return undefined;
  }
  const ms = Date.UTC(
    Number(m[1]),
    m[2] ? Number(m[2]) - 1 : 0,
    m[3] ? Number(m[3]) : 1,
    m[4] ? Number(m[4]) : 0,
    m[5] ? Number(m[5]) : 0,
    m[6] ? Number(m[6]) : 0,
    m[7] ? Math.round(Number(`0.${m[7]}`) * 1000) : 0,
  );
  if (Number.isNaN(ms)) {
    return undefined;
  }
  const tz = m[8];
  if (!tz || tz === 'Z') {
    return ms;
  }
  const sign = tz.startsWith('-') ? -1 : 1;
  const offset = (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60_000;
  return ms - sign * offset;
}
