import type { DatePrecision, DateValue, Sex } from './model';

/**
 * Pure normalizers. None of them throws: input that cannot be normalized gives `undefined`.
 * Empty or blank input gives `undefined`; the HL7 explicit null `""` is detected with
 * {@link isExplicitNull} by the caller (it means "delete", represented as `null`).
 */

/** True for the HL7 explicit null: the two characters `""` (surrounding blanks ignored). */
export function isExplicitNull(raw: string | undefined | null): boolean {
  return raw != null && raw.trim() === '""';
}

/** Trimmed, inner whitespace collapsed to one space; empty or `""` → undefined. */
export function tidyText(value: string | undefined | null): string | undefined {
  if (value == null) {
    return undefined;
  }
  const t = value.replace(/\s+/g, ' ').trim();
  return t === '' || t === '""' ? undefined : t;
}

/**
 * A person-name part: tidied and UPPER-CASED (locale-independent `toUpperCase`, so `ë` → `Ë`).
 * Upper case is the choice because most HL7 senders already send names in upper case and
 * matching compares names case-insensitively anyway; one casing everywhere keeps the golden
 * record stable whichever source wins.
 */
export function normalizeName(value: string | undefined | null): string | undefined {
  return tidyText(value)?.toUpperCase();
}

/** A code: tidied (case kept, codes are case-sensitive in some tables). */
export function normalizeCode(value: string | undefined | null): string | undefined {
  return tidyText(value);
}

/** Postal code: tidied and upper-cased (`cl22  1aa ` → `CL22 1AA`). */
export function normalizePostalCode(value: string | undefined | null): string | undefined {
  return tidyText(value)?.toUpperCase();
}

/** Phone number: digits only, a leading `+` kept; no digit → undefined. */
export function normalizePhone(value: string | undefined | null): string | undefined {
  if (value == null) {
    return undefined;
  }
  const t = value.trim();
  const digits = t.replace(/\D/g, '');
  if (digits === '') {
    return undefined;
  }
  return t.startsWith('+') ? `+${digits}` : digits;
}

/** E-mail: trimmed, `mailto:` dropped, lower-cased; no `@` → undefined. */
export function normalizeEmail(value: string | undefined | null): string | undefined {
  const t = tidyText(value)
    ?.replace(/^mailto:/i, '')
    .toLowerCase();
  return t !== undefined && t.includes('@') && !/\s/.test(t) ? t : undefined;
}

/** SSN: digits only; no digit → undefined. */
export function normalizeSsn(value: string | undefined | null): string | undefined {
  if (value == null) {
    return undefined;
  }
  const digits = value.replace(/\D/g, '');
  return digits === '' ? undefined : digits;
}

/**
 * SSN for display: only the last 4 digits shown (`***-**-4444` for 9 digits, one `*` per other
 * digit otherwise); 4 digits or fewer are masked entirely. No digit → undefined.
 */
export function maskSsn(value: string | undefined | null): string | undefined {
  const digits = normalizeSsn(value);
  if (digits === undefined) {
    return undefined;
  }
  if (digits.length <= 4) {
    return '*'.repeat(digits.length);
  }
  const last4 = digits.slice(-4);
  return digits.length === 9 ? `***-**-${last4}` : `${'*'.repeat(digits.length - 4)}${last4}`;
}

const SEX: Record<string, Sex> = {
  F: 'F',
  M: 'M',
  O: 'O',
  A: 'O', // ambiguous
  X: 'O',
  U: 'U',
  N: 'U', // not applicable
};

/** PID-8 (table 0001) → F/M/O/U; any other non-empty code → U; empty → undefined. */
export function normalizeSex(value: string | undefined | null): Sex | undefined {
  const t = tidyText(value)?.toUpperCase();
  if (t === undefined) {
    return undefined;
  }
  return SEX[t] ?? 'U';
}

/** Y/N (case-insensitive) → boolean; anything else → undefined. */
export function parseYesNo(value: string | undefined | null): boolean | undefined {
  const t = tidyText(value)?.toUpperCase();
  return t === 'Y' ? true : t === 'N' ? false : undefined;
}

/** A decimal number (`12`, `-1.5`, `+.5`); anything else → undefined. */
export function parseNumber(value: string | undefined | null): number | undefined {
  const t = value?.trim();
  if (t === undefined || !/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(t)) {
    return undefined;
  }
  return Number(t);
}

const HL7_DATE =
  /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,4})?)?)?)?)?)?([+-]\d{4})?$/;

const PRECISIONS: DatePrecision[] = ['year', 'month', 'day', 'hour', 'minute', 'second'];

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * HL7 DT/TS/DTM `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]` → ISO 8601 at the precision sent
 * (see {@link DateValue}). The time zone is kept as an offset (`+0100` → `+01:00`). TS's
 * second component (the old degree of precision) is ignored. Invalid → undefined.
 */
export function parseHl7Date(value: string | undefined | null): DateValue | undefined {
  if (value == null) {
    return undefined;
  }
  const m = HL7_DATE.exec(value.trim());
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  if (mo !== undefined && (Number(mo) < 1 || Number(mo) > 12)) {
    return undefined;
  }
  if (d !== undefined && (Number(d) < 1 || Number(d) > daysInMonth(year, Number(mo)))) {
    return undefined;
  }
  if (h !== undefined && Number(h) > 23) {
    return undefined;
  }
  if ((mi !== undefined && Number(mi) > 59) || (s !== undefined && Number(s) > 59)) {
    return undefined;
  }
  let offset = '';
  if (tz !== undefined) {
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(3, 5));
    if (oh > 14 || om > 59) {
      return undefined;
    }
    offset = `${tz[0]}${tz.slice(1, 3)}:${tz.slice(3, 5)}`;
  }
  const parts = [y, mo, d, h, mi, s].filter((p) => p !== undefined);
  const precision = PRECISIONS[parts.length - 1];
  let iso = y;
  if (mo !== undefined) {
    iso += `-${mo}`;
  }
  if (d !== undefined) {
    iso += `-${d}`;
  }
  if (h !== undefined) {
    iso += `T${h}`;
    if (mi !== undefined) {
      iso += `:${mi}`;
    }
    if (s !== undefined) {
      iso += `:${s}${frac ?? ''}`;
    }
    iso += offset;
  }
  return { value: iso, precision };
}
