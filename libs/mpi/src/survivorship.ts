import type { GoldenField, SurvivorshipConfig, SurvivorshipRule } from '@engine/config';
import type {
  FieldProvenance,
  GoldenRecord,
  GoldenResult,
  Provenance,
  SurvivorshipInput,
} from './golden';
import type { Address, PatientRecord, PersonName } from './model';
import { normalizeSsn } from './normalize';

/** Reads one golden field's candidate value from a source record; undefined = no value. */
type Extractor<F extends GoldenField> = (data: PatientRecord) => GoldenRecord[F] | undefined;

/** The first legal ('L') name, else the first name. */
function pickName(names: PersonName[] | null): PersonName | undefined {
  if (names == null || names.length === 0) {
    return undefined;
  }
  return names.find((n) => n.type === 'L') ?? names[0];
}

/** The first home ('H') address, else the first address. */
function pickAddress(addresses: Address[] | null): Address | undefined {
  if (addresses == null || addresses.length === 0) {
    return undefined;
  }
  return addresses.find((a) => a.type === 'H') ?? addresses[0];
}

/** Digits of the first SS identifier that has any. */
function pickSsn(data: PatientRecord): string | undefined {
  for (const id of data.identifiers) {
    if (id.type === 'SS') {
      const digits = normalizeSsn(id.value);
      if (digits !== undefined) {
        return digits;
      }
    }
  }
  return undefined;
}

function nonEmpty<T>(values: T[] | null | undefined): T[] | undefined {
  return values != null && values.length > 0 ? values : undefined;
}

/** Candidate extraction per golden field, in `GOLDEN_FIELDS` order. */
const EXTRACTORS: { readonly [F in GoldenField]: Extractor<F> } = {
  name: (d) => pickName(d.names),
  birthDate: (d) => d.birthDate ?? undefined,
  sex: (d) => d.sex ?? undefined,
  address: (d) => pickAddress(d.addresses),
  telecom: (d) => nonEmpty(d.telecom),
  ssn: pickSsn,
  mothersMaidenName: (d) => d.mothersMaidenName ?? undefined,
  race: (d) => nonEmpty(d.race),
  ethnicity: (d) => nonEmpty(d.ethnicity),
  language: (d) => d.language ?? undefined,
  maritalStatus: (d) => d.maritalStatus ?? undefined,
  multipleBirth: (d) => {
    const m = d.multipleBirth;
    return m != null && (m.indicator !== undefined || m.order !== undefined) ? m : undefined;
  },
  deceased: (d) => {
    const x = d.deceased;
    return x != null && (x.date != null || x.indicator !== undefined) ? x : undefined;
  },
};

const FIELDS = Object.keys(EXTRACTORS) as GoldenField[];

/** Fields whose string parts `mostFrequent` compares trimmed and case-insensitively. */
const FOLDED_FIELDS: ReadonlySet<GoldenField> = new Set<GoldenField>([
  'name',
  'address',
  'mothersMaidenName',
]);

/** Ranks for `mostTrusted`: lower is more trusted. */
interface TrustRank {
  /** Index of each authority in `trustedAuthorities` (first occurrence). */
  rank: ReadonlyMap<string, number>;
  /** The rank of every authority not listed: after all listed ones. */
  untrusted: number;
}

interface Candidate<V> {
  value: V;
  input: SurvivorshipInput;
}

/** True when `a` is more recent than `b`: newer `dataTime`, ties to the smaller record id. */
function isMoreRecent(a: SurvivorshipInput, b: SurvivorshipInput): boolean {
  if (a.dataTime !== b.dataTime) {
    return a.dataTime > b.dataTime;
  }
  return a.id < b.id;
}

function mostRecent<V>(candidates: Candidate<V>[]): Candidate<V> {
  let best = candidates[0];
  for (let i = 1; i < candidates.length; i++) {
    if (isMoreRecent(candidates[i].input, best.input)) {
      best = candidates[i];
    }
  }
  return best;
}

function mostTrusted<V>(candidates: Candidate<V>[], trust: TrustRank): Candidate<V> {
  const { rank, untrusted } = trust;
  let best = candidates[0];
  let bestRank = rank.get(best.input.authority) ?? untrusted;
  for (let i = 1; i < candidates.length; i++) {
    const c = candidates[i];
    const r = rank.get(c.input.authority) ?? untrusted;
    if (r < bestRank || (r === bestRank && isMoreRecent(c.input, best.input))) {
      best = c;
      bestRank = r;
    }
  }
  return best;
}

/**
 * Canonical JSON of a value: object keys sorted, undefined properties dropped (as
 * `JSON.stringify` does). With `fold`, strings are trimmed and lower-cased and empty strings are
 * dropped like undefined ones.
 */
function canonical(value: unknown, fold: boolean): string {
  if (typeof value === 'string') {
    return JSON.stringify(fold ? value.trim().toLowerCase() : value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => canonical(v, fold)).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(obj).sort()) {
      const v = obj[key];
      if (v === undefined || (fold && typeof v === 'string' && v.trim() === '')) {
        continue;
      }
      parts.push(`${JSON.stringify(key)}:${canonical(v, fold)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function mostFrequent<V>(candidates: Candidate<V>[], fold: boolean): Candidate<V> {
  const groups = new Map<string, { count: number; best: Candidate<V> }>();
  for (const c of candidates) {
    const key = canonical(c.value, fold);
    const g = groups.get(key);
    if (g === undefined) {
      groups.set(key, { count: 1, best: c });
    } else {
      g.count++;
      if (isMoreRecent(c.input, g.best.input)) {
        g.best = c;
      }
    }
  }
  let chosen: { count: number; best: Candidate<V> } | undefined;
  for (const g of groups.values()) {
    if (
      chosen === undefined ||
      g.count > chosen.count ||
      (g.count === chosen.count && isMoreRecent(g.best.input, chosen.best.input))
    ) {
      chosen = g;
    }
  }
  return chosen?.best ?? candidates[0];
}

function choose<V>(
  candidates: Candidate<V>[],
  rule: SurvivorshipRule,
  trust: TrustRank,
  fold: boolean,
): Candidate<V> {
  switch (rule) {
    case 'mostRecent':
      return mostRecent(candidates);
    case 'mostTrusted':
      return mostTrusted(candidates, trust);
    case 'mostFrequent':
      return mostFrequent(candidates, fold);
  }
}

function surviveField<F extends GoldenField>(
  field: F,
  records: SurvivorshipInput[],
  config: SurvivorshipConfig,
  trust: TrustRank,
  golden: GoldenRecord,
  provenance: Provenance,
): void {
  const extract: Extractor<F> = EXTRACTORS[field];
  const candidates: Candidate<NonNullable<GoldenRecord[F]>>[] = [];
  for (const input of records) {
    const value = extract(input.data);
    if (value != null) {
      candidates.push({ value, input });
    }
  }
  if (candidates.length === 0) {
    return;
  }
  const configured = config.fields[field] ?? config.default;
  const winner =
    candidates.length === 1
      ? candidates[0]
      : choose(candidates, configured, trust, FOLDED_FIELDS.has(field));
  golden[field] = winner.value;
  const p: FieldProvenance = {
    rule: candidates.length === 1 ? 'only' : configured,
    sourceRecordId: winner.input.id,
    authority: winner.input.authority,
    mrn: winner.input.mrn,
  };
  provenance[field] = p;
}

/**
 * Survivorship: builds a person's golden record from their active source records.
 *
 * For each golden field, every record with a value for it is a candidate (a record without one
 * neither wins nor erases the field); the field's rule (`config.fields[field]`, else
 * `config.default`) picks one candidate:
 * - `mostRecent`: the newest `dataTime`;
 * - `mostTrusted`: the authority listed first in `config.trustedAuthorities` (unlisted ones rank
 *   last), then the newest;
 * - `mostFrequent`: the value sent by most records (names and addresses compared trimmed and
 *   case-insensitively), ties to the group holding the newest candidate; the group's newest
 *   candidate is the one kept.
 *
 * Remaining ties go to the smallest record id, so the result does not depend on input order.
 * A field with a single candidate gets the rule `only` in its provenance; a field with none is
 * absent from both `golden` and `provenance`. Golden values are the records' own objects (not
 * copies): treat both input and output as read-only.
 */
export function computeGolden(
  records: SurvivorshipInput[],
  config: SurvivorshipConfig,
): GoldenResult {
  const golden: GoldenRecord = {};
  const provenance: Provenance = {};
  if (records.length === 0) {
    return { golden, provenance };
  }
  const rank = new Map<string, number>();
  config.trustedAuthorities.forEach((authority, i) => {
    if (!rank.has(authority)) {
      rank.set(authority, i);
    }
  });
  const trust: TrustRank = { rank, untrusted: config.trustedAuthorities.length };
  for (const field of FIELDS) {
    surviveField(field, records, config, trust, golden, provenance);
  }
  return { golden, provenance };
}
