import { phoneticCodes as doubleMetaphoneOf } from './comparators';
import type { PreparedRecord } from './features';

/**
 * Blocking: each record gets a handful of keys (strings); two records are compared only when they
 * share a key. The engine stores the keys in an indexed table (`mpi_block(key, source_record_id)`)
 * and finds a new record's candidates with one query (`WHERE key = ANY($1)`); the evaluation uses
 * {@link BlockIndex}, the same thing in memory.
 *
 * Keys are `<rule>:<value>`; every rule is chosen so that a true duplicate survives a typing
 * error in any one field (each field appears in several rules) and so that no key is common
 * (every name key also carries a birth date or postcode).
 */
export interface BlockingRule {
  id: string;
  description: string;
}

export const BLOCKING_RULES: readonly BlockingRule[] = [
  { id: 'nd', description: 'phonetic code of the family or the given name + full birth date' },
  { id: 'gy', description: 'phonetic given name + birth year + postcode' },
  { id: 'fp', description: 'phonetic family name + postcode + house number' },
  {
    id: 'gf',
    description: 'phonetic given name + phonetic family name (either order) + birth month and day',
  },
  { id: 'nm', description: 'phonetic given name + phonetic family name (either order)' },
  { id: 'dp', description: 'full birth date + postcode' },
  { id: 'ad', description: 'house number + phonetic first word of the street' },
  { id: 'ss', description: 'SSN' },
  { id: 'ni', description: 'national id' },
  { id: 'ph', description: 'phone (last 9 digits)' },
  { id: 'em', description: 'e-mail address' },
];

function codes(dm1: string, dm2: string): string[] {
  if (dm1 === '') {
    return [];
  }
  return dm2 === '' || dm2 === dm1 ? [dm1] : [dm1, dm2];
}

/** The blocking keys of a record (no duplicates). */
export function blockingKeys(p: PreparedRecord): string[] {
  const r = p.record;
  const keys = new Set<string>();
  const family = p.family ? codes(p.family.dm1, p.family.dm2) : [];
  const given = p.given ? codes(p.given.dm1, p.given.dm2) : [];
  const date = p.birth?.digits.length === 8 ? p.birth.digits : undefined;
  const year = p.birth ? String(p.birth.year) : undefined;
  if (date !== undefined) {
    for (const c of [...family, ...given]) {
      keys.add(`nd:${c}:${date}`);
    }
    if (r.postcode !== undefined) {
      keys.add(`dp:${date}:${r.postcode}`);
    }
  }
  if (year !== undefined && r.postcode !== undefined) {
    for (const c of given) {
      keys.add(`gy:${c}:${year}:${r.postcode}`);
    }
  }
  if (r.postcode !== undefined && r.streetNumber !== undefined) {
    for (const c of family) {
      keys.add(`fp:${c}:${r.postcode}:${r.streetNumber}`);
    }
  }
  if (p.birth !== undefined && p.birth.day > 0 && p.given && p.family) {
    const md = p.birth.digits.slice(4, 8);
    // Both orders: a record with given and family names swapped shares the key.
    const [g, f] = [p.given.dm1, p.family.dm1];
    if (g !== '' && f !== '') {
      keys.add(g < f ? `gf:${g}:${f}:${md}` : `gf:${f}:${g}:${md}`);
    }
  }
  if (p.given && p.family && p.given.dm1 !== '' && p.family.dm1 !== '') {
    const [g, f] = [p.given.dm1, p.family.dm1];
    keys.add(g < f ? `nm:${g}:${f}` : `nm:${f}:${g}`);
  }
  if (r.streetNumber !== undefined && r.street !== undefined) {
    const first = r.street.split(' ')[0];
    const [c] = codes(...doubleMetaphoneOf(first));
    if (c !== undefined) {
      keys.add(`ad:${r.streetNumber}:${c}`);
    }
  }
  if (r.ssn !== undefined) {
    keys.add(`ss:${r.ssn}`);
  }
  if (r.nationalId !== undefined) {
    keys.add(`ni:${r.nationalId}`);
  }
  if (r.phone !== undefined && r.phone.length >= 7) {
    keys.add(`ph:${r.phone.slice(-9)}`);
  }
  if (r.email !== undefined) {
    keys.add(`em:${r.email}`);
  }
  return [...keys];
}

export interface BlockIndexOptions {
  /**
   * Postings lists longer than this are not used to generate candidates (a key shared by that
   * many records — a placeholder phone, a family's shared e-mail — carries no evidence).
   */
  maxBlockSize?: number;
}

/** In-memory blocking index: key → record ordinals, and candidate pair enumeration. */
export class BlockIndex {
  private readonly postings = new Map<string, number[]>();
  readonly maxBlockSize: number;
  private size = 0;

  constructor(options: BlockIndexOptions = {}) {
    this.maxBlockSize = options.maxBlockSize ?? 1000;
  }

  /** Adds record `ordinal` (0, 1, 2, … in insertion order) under its keys. */
  add(keys: readonly string[]): number {
    const ordinal = this.size++;
    for (const key of keys) {
      const list = this.postings.get(key);
      if (list === undefined) {
        this.postings.set(key, [ordinal]);
      } else {
        list.push(ordinal);
      }
    }
    return ordinal;
  }

  get recordCount(): number {
    return this.size;
  }

  get keyCount(): number {
    return this.postings.size;
  }

  /** Keys whose postings list is over `maxBlockSize` (skipped when generating candidates). */
  oversizedKeys(): string[] {
    return [...this.postings].filter(([, l]) => l.length > this.maxBlockSize).map(([k]) => k);
  }

  /** The records sharing at least one of `keys` (the engine's one indexed query). */
  lookup(keys: readonly string[]): Set<number> {
    const out = new Set<number>();
    for (const key of keys) {
      const list = this.postings.get(key);
      if (list !== undefined && list.length <= this.maxBlockSize) {
        for (const o of list) {
          out.add(o);
        }
      }
    }
    return out;
  }

  /**
   * Every distinct candidate pair `[i, j]` with i < j, once, optionally filtered (e.g. only pairs
   * across two files for a linkage task).
   */
  *pairs(filter?: (i: number, j: number) => boolean): Generator<[number, number]> {
    const seen = new Set<number>();
    const n = this.size;
    for (const list of this.postings.values()) {
      if (list.length < 2 || list.length > this.maxBlockSize) {
        continue;
      }
      for (let x = 0; x < list.length; x++) {
        for (let y = x + 1; y < list.length; y++) {
          const i = Math.min(list[x], list[y]);
          const j = Math.max(list[x], list[y]);
          if (i === j) {
            continue;
          }
          const id = i * n + j;
          if (seen.has(id)) {
            continue;
          }
          seen.add(id);
          if (filter === undefined || filter(i, j)) {
            yield [i, j];
          }
        }
      }
    }
  }
}
