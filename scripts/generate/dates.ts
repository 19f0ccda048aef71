/**
 * Calendar helpers for the generator. Times are whole seconds since WINDOW_START (UTC), the
 * start of the period the synthetic feed covers; birth dates are `YYYYMMDD` strings. No local
 * time zone is involved, so output is identical on every machine.
 */

/** The feed covers 2016-01-01 to 2024-01-01 (eight years, less than 2^28 seconds). */
export const WINDOW_START_MS = Date.UTC(2016, 0, 1);
export const WINDOW_SECONDS = Math.floor((Date.UTC(2024, 0, 1) - WINDOW_START_MS) / 1000);
export const DAY = 86400;
export const YEAR = Math.round(365.2425 * DAY);
export const WINDOW_START_YEAR = 2016;

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function isValidDate(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

export function formatDate(year: number, month: number, day: number): string {
  return `${pad(year, 4)}${pad(month)}${pad(day)}`;
}

export function parseDate(value: string): { year: number; month: number; day: number } {
  return {
    year: Number(value.slice(0, 4)),
    month: Number(value.slice(4, 6)),
    day: Number(value.slice(6, 8)),
  };
}

/** Window seconds of midnight UTC of a `YYYYMMDD` date (negative before the window). */
export function dateToSeconds(value: string): number {
  const { year, month, day } = parseDate(value);
  return Math.floor((Date.UTC(year, month - 1, day) - WINDOW_START_MS) / 1000);
}

/** Age in whole years at window time `at`. */
export function ageAt(birth: string, at: number): number {
  const d = new Date(WINDOW_START_MS + at * 1000);
  const { year, month, day } = parseDate(birth);
  const m = d.getUTCMonth() + 1;
  const before = m < month || (m === month && d.getUTCDate() < day);
  return d.getUTCFullYear() - year - (before ? 1 : 0);
}

/** HL7 DTM to the second (`YYYYMMDDHHMMSS`) for window time `at`. */
export function formatTimestamp(at: number): string {
  const d = new Date(WINDOW_START_MS + at * 1000);
  return (
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  );
}
