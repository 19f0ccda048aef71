import type {
  ChildMove,
  DuplicateTaskRow,
  TaskDecisionRow,
  EncounterRow,
  EventRow,
  HistoryRow,
  PersonRow,
  ResultRow,
  SourceRecordRow,
} from './rows';

/** A key the apply step needed but the prefetch did not load: a bug, never bad input. */
export class NotPrefetchedError extends Error {}

export function recordKey(authority: string, mrn: string): string {
  return `${authority}\u001f${mrn}`;
}

/**
 * The slice of the MPI one batch of messages works on: rows loaded up front by `MpiStore`
 * (every record the batch names, the records of their persons, their encounters and results),
 * changed in memory by the apply step, then written back in one transaction. Lookups are
 * synchronous: a lookup of something not prefetched throws `NotPrefetchedError` (keys the
 * prefetch looked for and did not find are remembered as absent).
 */
export class WorkingSet {
  readonly persons = new Map<string, PersonRow>();
  readonly records = new Map<string, SourceRecordRow>();
  private readonly recordsByKey = new Map<string, SourceRecordRow | null>();
  /** Data and status of loaded records as read (the objects are replaced, never mutated). */
  private readonly loaded = new Map<
    string,
    { data: SourceRecordRow['data']; status: SourceRecordRow['status'] }
  >();
  /** Persons whose records are all loaded. */
  private readonly completePersons = new Set<string>();
  readonly encounters = new Map<string, EncounterRow>();
  readonly results = new Map<string, ResultRow>();
  /** Record ids whose encounters/results were loaded (for the keys of this batch). */
  private readonly childrenLoaded = new Set<string>();
  /** SSN → records holding it (loaded by the identity prefetch). */
  private readonly bySsnLoaded = new Map<string, Set<string>>();
  /** Blocking key → active records holding it (loaded by the identity prefetch). */
  private readonly byBlockLoaded = new Map<string, Set<string>>();
  /** Blocking keys of records created or changed here, by key (for candidates within a batch). */
  private readonly byBlockNew = new Map<string, Set<string>>();

  readonly newPersons = new Set<string>();
  readonly dirtyPersons = new Set<string>();
  readonly newRecords = new Set<string>();
  readonly dirtyRecords = new Set<string>();
  /** Records whose identifier rows must be rewritten. */
  readonly dirtyIdentifiers = new Set<string>();
  readonly newEncounters = new Set<string>();
  readonly dirtyEncounters = new Set<string>();
  readonly newResults = new Set<string>();
  readonly dirtyResults = new Set<string>();
  readonly moves: ChildMove[] = [];
  /** Records whose `mpi_block` rows must be rewritten, with their new keys ([] = none). */
  readonly blocks = new Map<string, string[]>();
  readonly tasks: DuplicateTaskRow[] = [];
  readonly taskDecisions: TaskDecisionRow[] = [];
  readonly events: EventRow[] = [];
  readonly history: HistoryRow[] = [];

  // ---- loading (MpiStore) -------------------------------------------------------------

  addPerson(p: PersonRow): void {
    if (!this.persons.has(p.euid)) {
      this.persons.set(p.euid, p);
    }
  }

  addRecord(r: SourceRecordRow): void {
    if (!this.records.has(r.id)) {
      this.records.set(r.id, r);
      this.recordsByKey.set(recordKey(r.authority, r.mrn), r);
      this.loaded.set(r.id, { data: r.data, status: r.status });
    }
  }

  /** A record as the database holds it (before this batch changed it); undefined when new. */
  loadedState(
    id: string,
  ): { data: SourceRecordRow['data']; status: SourceRecordRow['status'] } | undefined {
    return this.loaded.get(id);
  }

  /** The prefetch looked for this key: absent unless a row was added. */
  markKeyLoaded(authority: string, mrn: string): void {
    const k = recordKey(authority, mrn);
    if (!this.recordsByKey.has(k)) {
      this.recordsByKey.set(k, null);
    }
  }

  markPersonComplete(euid: string): void {
    this.completePersons.add(euid);
  }

  addEncounter(e: EncounterRow): void {
    if (!this.encounters.has(e.id)) {
      this.encounters.set(e.id, e);
    }
  }

  addResult(r: ResultRow): void {
    if (!this.results.has(r.id)) {
      this.results.set(r.id, r);
    }
  }

  markChildrenLoaded(recordId: string): void {
    this.childrenLoaded.add(recordId);
  }

  markSsnLoaded(ssn: string, recordIds: string[]): void {
    const set = this.bySsnLoaded.get(ssn) ?? new Set<string>();
    recordIds.forEach((id) => set.add(id));
    this.bySsnLoaded.set(ssn, set);
  }

  markBlockLoaded(key: string, recordIds: string[]): void {
    const set = this.byBlockLoaded.get(key) ?? new Set<string>();
    recordIds.forEach((id) => set.add(id));
    this.byBlockLoaded.set(key, set);
  }

  isKeyLoaded(authority: string, mrn: string): boolean {
    return this.recordsByKey.has(recordKey(authority, mrn));
  }

  isPersonComplete(euid: string): boolean {
    return this.completePersons.has(euid) || this.newPersons.has(euid);
  }

  // ---- lookups (apply) -----------------------------------------------------------------

  /** The record of a key when loaded (no error when the key was not looked for). */
  recordByKeyIfLoaded(authority: string, mrn: string): SourceRecordRow | undefined {
    return this.recordsByKey.get(recordKey(authority, mrn)) ?? undefined;
  }

  recordByKey(authority: string, mrn: string): SourceRecordRow | undefined {
    const found = this.recordsByKey.get(recordKey(authority, mrn));
    if (found === undefined) {
      throw new NotPrefetchedError(`source record key not prefetched`);
    }
    return found ?? undefined;
  }

  record(id: string): SourceRecordRow {
    const r = this.records.get(id);
    if (!r) {
      throw new NotPrefetchedError(`source record ${id} not prefetched`);
    }
    return r;
  }

  person(euid: string): PersonRow {
    const p = this.persons.get(euid);
    if (!p) {
      throw new NotPrefetchedError(`person ${euid} not prefetched`);
    }
    return p;
  }

  /** Every record (any status) of a person. */
  recordsOf(euid: string): SourceRecordRow[] {
    if (!this.isPersonComplete(euid)) {
      throw new NotPrefetchedError(`records of person ${euid} not prefetched`);
    }
    const out: SourceRecordRow[] = [];
    for (const r of this.records.values()) {
      if (r.personEuid === euid) {
        out.push(r);
      }
    }
    return out;
  }

  /** The record that stands for `r` now: itself, or the end of its merged-into chain. */
  owner(r: SourceRecordRow): SourceRecordRow {
    let cur = r;
    for (let i = 0; i < 64 && cur.status === 'merged' && cur.mergedInto; i++) {
      cur = this.record(cur.mergedInto);
    }
    return cur;
  }

  /** Active records holding this SSN (as a current identifier). */
  recordsBySsn(ssn: string): SourceRecordRow[] {
    const ids = this.bySsnLoaded.get(ssn);
    const out = new Map<string, SourceRecordRow>();
    for (const id of ids ?? []) {
      const r = this.records.get(id);
      if (r) {
        out.set(r.id, r);
      }
    }
    // Records created or changed in this batch are not in the database yet.
    for (const id of [...this.newRecords, ...this.dirtyIdentifiers]) {
      const r = this.records.get(id);
      if (r) {
        out.set(r.id, r);
      }
    }
    return [...out.values()].filter(
      (r) =>
        r.status === 'active' &&
        r.identifiers.some((i) => i.type === 'SS' && !i.retired && i.value === ssn),
    );
  }

  /**
   * Active records sharing any of these blocking keys (the candidates of a new record), from
   * the database and from this batch.
   */
  recordsByBlocks(keys: string[]): SourceRecordRow[] {
    const ids = new Set<string>();
    for (const k of keys) {
      this.byBlockLoaded.get(k)?.forEach((id) => ids.add(id));
      this.byBlockNew.get(k)?.forEach((id) => ids.add(id));
    }
    const out: SourceRecordRow[] = [];
    for (const id of ids) {
      const r = this.records.get(id);
      if (r && r.status === 'active') {
        out.push(r);
      }
    }
    return out;
  }

  /** Sets the blocking keys a record will have (written at flush). */
  setBlocks(recordId: string, keys: string[]): void {
    this.blocks.set(recordId, keys);
    for (const k of keys) {
      const set = this.byBlockNew.get(k) ?? new Set<string>();
      set.add(recordId);
      this.byBlockNew.set(k, set);
    }
  }

  /** The encounter `visitKey` of the record `owner` (its own first, else one moved onto it). */
  encounter(ownerId: string, visitKey: string): EncounterRow | undefined {
    this.requireChildren(ownerId);
    let moved: EncounterRow | undefined;
    for (const e of this.encounters.values()) {
      if (e.sourceRecordId === ownerId && e.visitKey === visitKey) {
        if (e.originRecordId === ownerId) {
          return e;
        }
        moved ??= e;
      }
    }
    return moved;
  }

  result(ownerId: string, orderKey: string): ResultRow | undefined {
    this.requireChildren(ownerId);
    let moved: ResultRow | undefined;
    for (const r of this.results.values()) {
      if (r.sourceRecordId === ownerId && r.orderKey === orderKey) {
        if (r.originRecordId === ownerId) {
          return r;
        }
        moved ??= r;
      }
    }
    return moved;
  }

  private requireChildren(recordId: string): void {
    if (!this.childrenLoaded.has(recordId) && !this.newRecords.has(recordId)) {
      throw new NotPrefetchedError(`encounters/results of record ${recordId} not prefetched`);
    }
  }

  // ---- changes (apply) ---------------------------------------------------------------

  createPerson(p: PersonRow): void {
    this.persons.set(p.euid, p);
    this.newPersons.add(p.euid);
  }

  touchPerson(p: PersonRow): void {
    if (!this.newPersons.has(p.euid)) {
      this.dirtyPersons.add(p.euid);
    }
  }

  createRecord(r: SourceRecordRow): void {
    this.records.set(r.id, r);
    this.recordsByKey.set(recordKey(r.authority, r.mrn), r);
    this.newRecords.add(r.id);
    this.dirtyIdentifiers.add(r.id);
  }

  touchRecord(r: SourceRecordRow, identifiersChanged = false): void {
    if (!this.newRecords.has(r.id)) {
      this.dirtyRecords.add(r.id);
    }
    if (identifiersChanged) {
      this.dirtyIdentifiers.add(r.id);
    }
  }

  /** A record changes its key (A46/A47): the old key becomes free. */
  rekeyRecord(r: SourceRecordRow, authority: string, mrn: string): void {
    this.recordsByKey.set(recordKey(r.authority, r.mrn), null);
    r.authority = authority;
    r.mrn = mrn;
    this.recordsByKey.set(recordKey(authority, mrn), r);
    this.touchRecord(r, true);
  }

  createEncounter(e: EncounterRow): void {
    this.encounters.set(e.id, e);
    this.newEncounters.add(e.id);
  }

  touchEncounter(e: EncounterRow): void {
    if (!this.newEncounters.has(e.id)) {
      this.dirtyEncounters.add(e.id);
    }
  }

  createResult(r: ResultRow): void {
    this.results.set(r.id, r);
    this.newResults.add(r.id);
  }

  touchResult(r: ResultRow): void {
    if (!this.newResults.has(r.id)) {
      this.dirtyResults.add(r.id);
    }
  }

  /** Moves every encounter and result of `from` to `to` (loaded ones now, the rest at flush). */
  moveChildren(fromRecordId: string, toRecordId: string, now: Date): void {
    for (const e of this.encounters.values()) {
      if (e.sourceRecordId === fromRecordId) {
        e.sourceRecordId = toRecordId;
        e.updatedAt = now;
        this.touchEncounter(e);
      }
    }
    for (const r of this.results.values()) {
      if (r.sourceRecordId === fromRecordId) {
        r.sourceRecordId = toRecordId;
        r.updatedAt = now;
        this.touchResult(r);
      }
    }
    if (this.childrenLoaded.has(fromRecordId) || this.newRecords.has(fromRecordId)) {
      this.childrenLoaded.add(toRecordId);
    }
    this.moves.push({ fromRecordId, toRecordId });
  }

  /** Nothing to write. */
  get isClean(): boolean {
    return (
      this.newPersons.size +
        this.dirtyPersons.size +
        this.newRecords.size +
        this.dirtyRecords.size +
        this.newEncounters.size +
        this.dirtyEncounters.size +
        this.newResults.size +
        this.dirtyResults.size +
        this.moves.length +
        this.events.length +
        this.history.length +
        this.blocks.size +
        this.tasks.length +
        this.taskDecisions.length ===
      0
    );
  }
}
