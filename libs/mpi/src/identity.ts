import type { PatientRecord } from './model';
import type { WorkingSet } from './working-set';

/** What an identity resolver may ask the store to load before a batch is applied. */
export interface IdentityPrefetch {
  /** SSNs (digits) whose active holders must be in the working set. */
  ssns: Set<string>;
  /** Blocking keys whose active records (the candidates) must be in the working set. */
  blockKeys: Set<string>;
}

/** A pair for a person to review: an existing record that scored in the review band. */
export interface ReviewCandidate {
  recordId: string;
  euid: string;
  score: number;
  /** The field-by-field explanation of the score (shown on the worklist). */
  breakdown: unknown;
}

/** What the resolver decided for a new source record. */
export interface IdentityMatch {
  /** The person the record joins; undefined: a new person. */
  euid?: string;
  /** Machine-readable rule or method, e.g. 'ssn+birthDate+sex' or 'probabilistic'. */
  rule: string;
  score?: number;
  /** Pairs to put on the duplicate worklist. */
  reviews?: ReviewCandidate[];
}

/**
 * Decides, for a source record seen for the first time, whether it belongs to a person already
 * in the index. Called synchronously during apply, over a working set the store prefetched
 * with what `prefetch` asked for. The probabilistic matcher replaces the deterministic one
 * behind this interface.
 */
export interface IdentityResolver {
  prefetch(patient: PatientRecord, into: IdentityPrefetch): void;
  resolve(ws: WorkingSet, patient: PatientRecord): IdentityMatch | undefined;
  /** The blocking keys stored for an active record (`mpi_block`); none when not blocking. */
  blockKeys(patient: PatientRecord): string[];
}

export function ssnOf(patient: PatientRecord): string | undefined {
  return patient.identifiers.find((i) => i.type === 'SS' && i.value !== '')?.value;
}

/**
 * Joins a new record to an existing person only on strong deterministic evidence: the same SSN,
 * the same full birth date and the same sex, held by records of exactly one active person, none
 * of them from the same assigning authority (two records of one facility are never linked
 * automatically: that is a same-facility duplicate for a person to review).
 */
export class DeterministicIdentityResolver implements IdentityResolver {
  blockKeys(): string[] {
    return [];
  }

  prefetch(patient: PatientRecord, into: IdentityPrefetch): void {
    const ssn = ssnOf(patient);
    if (ssn && isPlausibleSsn(ssn)) {
      into.ssns.add(ssn);
    }
  }

  resolve(ws: WorkingSet, patient: PatientRecord): IdentityMatch | undefined {
    const ssn = ssnOf(patient);
    const birth = patient.birthDate;
    if (!ssn || !isPlausibleSsn(ssn) || !birth || birth.precision === 'year') {
      return undefined;
    }
    if (birth.precision === 'month' || !patient.sex || patient.sex === 'U') {
      return undefined;
    }
    const holders = ws.recordsBySsn(ssn);
    if (holders.length === 0 || holders.some((r) => r.authority === patient.authority)) {
      return undefined;
    }
    const persons = new Set(holders.map((r) => r.personEuid));
    if (persons.size !== 1) {
      return undefined;
    }
    const [euid] = persons;
    const person = ws.person(euid);
    if (person.status !== 'active') {
      return undefined;
    }
    const agrees = holders.some(
      (r) =>
        r.data.birthDate?.value.slice(0, 10) === birth.value.slice(0, 10) &&
        r.data.sex === patient.sex,
    );
    return agrees ? { euid, rule: 'ssn+birthDate+sex' } : undefined;
  }
}

/** Placeholder SSNs (000…, 999999999, 123456789, all one digit) are evidence of nothing. */
export function isPlausibleSsn(ssn: string): boolean {
  return (
    ssn.length === 9 &&
    !/^(\d)\1{8}$/.test(ssn) &&
    ssn !== '123456789' &&
    !ssn.startsWith('000') &&
    !ssn.startsWith('666') &&
    !ssn.startsWith('9') &&
    ssn.slice(3, 5) !== '00' &&
    ssn.slice(5) !== '0000'
  );
}
