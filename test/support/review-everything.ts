import type {
  IdentityMatch,
  IdentityPrefetch,
  IdentityResolver,
  PatientRecord,
  WorkingSet,
} from '@engine/mpi';

/** Candidates by family name + birth date, every one to review (the worklist plumbing). */
export class ReviewEverything implements IdentityResolver {
  blockKeys(p: PatientRecord): string[] {
    const family = p.names?.[0]?.family;
    return family && p.birthDate ? [`fd:${family}:${p.birthDate.value}`] : [];
  }
  prefetch(p: PatientRecord, into: IdentityPrefetch): void {
    this.blockKeys(p).forEach((k) => into.blockKeys.add(k));
  }
  resolve(ws: WorkingSet, p: PatientRecord): IdentityMatch | undefined {
    const candidates = ws.recordsByBlocks(this.blockKeys(p));
    return candidates.length === 0
      ? undefined
      : {
          rule: 'test',
          reviews: candidates.map((c, i) => ({
            recordId: c.id,
            euid: c.personEuid,
            score: 8 - i,
            breakdown: [{ field: 'family', level: 'exact', weight: 4 }],
          })),
        };
  }
}
