import type {
  IdentityMatch,
  IdentityPrefetch,
  IdentityResolver,
  ReviewCandidate,
} from './identity';
import { DeterministicIdentityResolver } from './identity';
import type { PatientRecord } from './model';
import {
  blockingKeys,
  compiledOf,
  fromPatientRecord,
  PairScorer,
  prepareRecord,
  resolveMatchParams,
  scorePair,
  validateMatchingConfig,
  type CompiledParams,
  type MatchParams,
  type PreparedRecord,
} from './matching';
import type { SourceRecordRow } from './rows';
import type { WorkingSet } from './working-set';

/** Most review tasks one new record opens (the best-scoring persons). */
const MAX_REVIEWS = 5;

/**
 * Identity on arrival by probabilistic matching: the new record's blocking keys find candidate
 * records (`mpi_block`, one indexed query for the whole batch), each candidate is scored
 * (Fellegi–Sunter, see docs/matching.md), and per person the best score decides:
 *
 * - exactly one person at or above `autoLink` (and not held back: same assigning authority,
 *   twins, junior/senior, …) → the record joins that person;
 * - persons in the review band (or held back) → the record becomes a new person and a duplicate
 *   task is opened per such person, with the field-by-field breakdown;
 * - two persons at `autoLink` → ambiguous: a new person and both pairs to review.
 */
export class ProbabilisticIdentityResolver implements IdentityResolver {
  private readonly scorer: PairScorer;
  private readonly compiled: CompiledParams;
  /** Features of a record's data, computed once per data object. */
  private readonly prepared = new WeakMap<PatientRecord, PreparedRecord>();

  constructor(params: MatchParams | CompiledParams = resolveMatchParams()) {
    this.compiled = compiledOf(params);
    this.scorer = new PairScorer(this.compiled);
  }

  private prepare(p: PatientRecord, id?: string): PreparedRecord {
    let out = this.prepared.get(p);
    if (!out) {
      out = prepareRecord(fromPatientRecord(p, id));
      this.prepared.set(p, out);
    }
    return out;
  }

  blockKeys(patient: PatientRecord): string[] {
    return blockingKeys(this.prepare(patient));
  }

  prefetch(patient: PatientRecord, into: IdentityPrefetch): void {
    for (const k of this.blockKeys(patient)) {
      into.blockKeys.add(k);
    }
  }

  resolve(ws: WorkingSet, patient: PatientRecord): IdentityMatch | undefined {
    const me = this.prepare(patient);
    const best = new Map<string, { score: number; auto: boolean; record: SourceRecordRow }>();
    for (const c of ws.recordsByBlocks(blockingKeys(me))) {
      if (c.authority === patient.authority && c.mrn === patient.mrn) {
        continue;
      }
      if (ws.person(c.personEuid).status !== 'active') {
        continue;
      }
      const { score, decision } = this.scorer.score(me, this.prepare(c.data, c.id));
      if (decision === 'no-match') {
        continue;
      }
      const prev = best.get(c.personEuid);
      if (!prev || score > prev.score) {
        best.set(c.personEuid, { score, auto: decision === 'auto-link', record: c });
      }
    }
    if (best.size === 0) {
      return undefined;
    }
    const ranked = [...best.entries()].sort((a, b) => b[1].score - a[1].score);
    const autos = ranked.filter(([, v]) => v.auto);
    const join = autos.length === 1 ? autos[0] : undefined;
    const reviews: ReviewCandidate[] = ranked
      .filter(([euid]) => euid !== join?.[0])
      .slice(0, MAX_REVIEWS)
      .map(([euid, v]) => {
        const explained = scorePair(me, this.prepare(v.record.data, v.record.id), this.compiled);
        return {
          recordId: v.record.id,
          euid,
          score: Math.round(explained.score * 1000) / 1000,
          breakdown: { fields: explained.breakdown, held: explained.held },
        };
      });
    return {
      euid: join?.[0],
      rule: 'probabilistic',
      score: join ? Math.round(join[1].score * 1000) / 1000 : undefined,
      reviews,
    };
  }
}

/** Which identity resolver the engine uses (config `mpi.identity`), with its settings. */
export function createIdentityResolver(
  kind: 'probabilistic' | 'deterministic',
  matching?: unknown,
): IdentityResolver {
  if (kind === 'deterministic') {
    return new DeterministicIdentityResolver();
  }
  const config =
    matching === undefined ? undefined : validateMatchingConfig(matching, 'mpi.matching');
  return new ProbabilisticIdentityResolver(resolveMatchParams(config));
}
