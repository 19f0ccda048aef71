/**
 * The data-entry errors a registration clerk makes, as pure functions of a seeded generator:
 * typing slips in names, transposed or mistyped birth dates and SSNs. Each returns a value that
 * differs from its input (or undefined when no such error fits the value).
 */
import { formatDate, isValidDate, parseDate } from './dates';
import { type Rng } from './rng';

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** QWERTY neighbours: substitutions and insertions mostly hit an adjacent key. */
const KEY_ROWS = ['QWERTYUIOP', 'ASDFGHJKL', 'ZXCVBNM'];
const NEIGHBOURS = new Map<string, string>();
KEY_ROWS.forEach((row, r) => {
  for (let i = 0; i < row.length; i++) {
    let near = (row[i - 1] ?? '') + (row[i + 1] ?? '');
    for (const other of [KEY_ROWS[r - 1], KEY_ROWS[r + 1]]) {
      if (other) {
        near += (other[i - 1] ?? '') + (other[i] ?? '');
      }
    }
    NEIGHBOURS.set(row[i], near);
  }
});

function nearKey(rng: Rng, ch: string): string {
  const near = NEIGHBOURS.get(ch);
  return near && rng.chance(0.8) ? rng.pick([...near]) : rng.pick([...LETTERS]);
}

export type TypoKind = 'insert' | 'delete' | 'substitute' | 'transpose';
const TYPO_KINDS: readonly TypoKind[] = ['insert', 'delete', 'substitute', 'transpose'];

/**
 * One typing slip in an upper-case name: insert (a doubled or neighbouring letter), delete,
 * substitute (usually a neighbouring key) or transpose two adjacent letters. The first letter
 * is rarely touched (as in real data, where initials are the most reliable part).
 */
export function typo(rng: Rng, name: string): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    const kind = rng.pick(TYPO_KINDS);
    const pos = name.length > 2 && rng.chance(0.9) ? rng.int(1, name.length - 1) : 0;
    const ch = name[pos];
    let out: string;
    switch (kind) {
      case 'insert':
        out = name.slice(0, pos) + (rng.chance(0.5) ? ch : nearKey(rng, ch)) + name.slice(pos);
        break;
      case 'delete':
        if (name.length <= 3) {
          continue;
        }
        out = name.slice(0, pos) + name.slice(pos + 1);
        break;
      case 'substitute':
        if (!/[A-Z]/.test(ch)) {
          continue;
        }
        out = name.slice(0, pos) + nearKey(rng, ch) + name.slice(pos + 1);
        break;
      case 'transpose': {
        const p = Math.min(pos, name.length - 2);
        out = name.slice(0, p) + name[p + 1] + name[p] + name.slice(p + 2);
        break;
      }
    }
    if (out !== name && /^[A-Z]/.test(out) && !/[ '-]{2}|[ '-]$/.test(out)) {
      return out;
    }
  }
  return `${name}${name[name.length - 1]}`;
}

/** Day and month swapped (05/03 entered as 03/05); undefined when that is no valid other date. */
export function transposeDayMonth(birth: string): string | undefined {
  const { year, month, day } = parseDate(birth);
  if (day === month || !isValidDate(year, day, month)) {
    return undefined;
  }
  return formatDate(year, day, month);
}

/** One digit of the birth date mistyped (mostly in the year's last two digits or the day). */
export function birthDigitOff(rng: Rng, birth: string, maxYear: number): string {
  const positions = [2, 3, 3, 3, 5, 6, 7, 7];
  for (let attempt = 0; attempt < 50; attempt++) {
    const pos = rng.pick(positions);
    const digit = String(rng.int(0, 9));
    if (digit === birth[pos]) {
      continue;
    }
    const out = birth.slice(0, pos) + digit + birth.slice(pos + 1);
    const { year, month, day } = parseDate(out);
    if (year >= 1900 && year <= maxYear && isValidDate(year, month, day)) {
      return out;
    }
  }
  // Always possible: the day's last digit moved by one.
  const { year, month, day } = parseDate(birth);
  return formatDate(year, month, day > 1 ? day - 1 : day + 1);
}

/**
 * A plausible SSN: 9 digits, area (first 3) not 000, 666 or 9xx, group (next 2) not 00,
 * serial (last 4) not 0000, and not all one digit.
 */
export function isPlausibleSsn(ssn: string): boolean {
  if (!/^\d{9}$/.test(ssn) || /^(\d)\1{8}$/.test(ssn)) {
    return false;
  }
  const area = ssn.slice(0, 3);
  return (
    area !== '000' &&
    area !== '666' &&
    area[0] !== '9' &&
    ssn.slice(3, 5) !== '00' &&
    ssn.slice(5) !== '0000'
  );
}

export function randomSsn(rng: Rng): string {
  for (;;) {
    const area = rng.int(1, 899);
    const ssn =
      String(area).padStart(3, '0') +
      String(rng.int(1, 99)).padStart(2, '0') +
      String(rng.int(1, 9999)).padStart(4, '0');
    if (isPlausibleSsn(ssn)) {
      return ssn;
    }
  }
}

/** One SSN digit mistyped, still plausible; `taken` rejects another person's number. */
export function ssnDigitOff(rng: Rng, ssn: string, taken: (s: string) => boolean): string {
  for (;;) {
    const pos = rng.int(0, 8);
    const digit = String(rng.int(0, 9));
    const out = ssn.slice(0, pos) + digit + ssn.slice(pos + 1);
    if (out !== ssn && isPlausibleSsn(out) && !taken(out)) {
      return out;
    }
  }
}

/** Two adjacent, different SSN digits swapped; undefined when none gives a plausible number. */
export function ssnTransposed(
  rng: Rng,
  ssn: string,
  taken: (s: string) => boolean,
): string | undefined {
  const start = rng.int(0, 7);
  for (let k = 0; k < 8; k++) {
    const p = (start + k) % 8;
    if (ssn[p] === ssn[p + 1]) {
      continue;
    }
    const out = ssn.slice(0, p) + ssn[p + 1] + ssn[p] + ssn.slice(p + 2);
    if (isPlausibleSsn(out) && !taken(out)) {
      return out;
    }
  }
  return undefined;
}
