import type { SurvivorshipConfig } from '@engine/config';
import { definedOnly, jsonEqual } from './equal';
import type { IdentityPrefetch, IdentityResolver } from './identity';
import type {
  Encounter,
  Identifier,
  NormalizedMessage,
  OrderResult,
  PatientGroup,
  PatientRecord,
} from './model';
import {
  pairKey,
  type EncounterRow,
  type EventType,
  type HistoryKind,
  type IdentifierRow,
  type PersonRow,
  type ResultRow,
  type SourceRecordRow,
  type StoredEncounterStatus,
} from './rows';
import { computeGolden } from './survivorship';
import { dateValueToMs } from './time';
import type { WorkingSet } from './working-set';

/**
 * ADT/ORU semantics over the master patient index: one normalized message becomes changes to
 * source records, persons (golden records), encounters and results in a {@link WorkingSet},
 * plus the domain events and history rows that describe them. Pure and synchronous: the store
 * prefetches what {@link collectPrefetch} names, and writes the working set back afterwards.
 */

export interface ApplyContext {
  ws: WorkingSet;
  now: Date;
  newId: () => string;
  identity: IdentityResolver;
  survivorship: SurvivorshipConfig;
  /** Whether ORU messages update demographics of an existing record (default false). */
  resultsUpdateDemographics: boolean;
}

export interface MessageMeta {
  /** The stored message applied; null for changes that come from no message (bulk import). */
  messageId: string | null;
  receivedAt: Date;
}

export type ApplyOutcome =
  | { status: 'processed'; changed: boolean }
  | { status: 'ignored'; reason: string }
  | { status: 'error'; code: string; reason: string };

/** Create or update the source record (and its encounter). */
const UPDATE_TRIGGERS = new Set([
  'A01',
  'A02',
  'A03',
  'A04',
  'A05',
  'A06',
  'A07',
  'A08',
  'A11',
  'A12',
  'A13',
  'A14',
  'A15',
  'A16',
  'A17',
  'A21',
  'A22',
  'A25',
  'A26',
  'A27',
  'A28',
  'A31',
  'A38',
]);
/** Patient merges: the MRG-1 prior record into the PID-3 survivor. */
const MERGE_TRIGGERS = new Set(['A18', 'A30', 'A34', 'A39', 'A40']);
/** Identifier changes: the MRG-1 prior identifier becomes the PID-3 one. */
const REKEY_TRIGGERS = new Set(['A46', 'A47']);
export const SUPPORTED_ADT_TRIGGERS = new Set([
  ...UPDATE_TRIGGERS,
  ...MERGE_TRIGGERS,
  ...REKEY_TRIGGERS,
  'A23',
  'A24',
  'A29',
  'A37',
  'A41',
  'A42',
  'A49',
]);

/** Keys a message needs in the working set. */
export interface PrefetchKeys extends IdentityPrefetch {
  /** [authority, mrn] pairs. */
  records: Array<[string, string]>;
  /**
   * What identity resolution needs for each patient of the batch, loaded only for patients
   * whose record does not exist yet (only a new record is matched).
   */
  identity: Array<{ authority: string; mrn: string; needs: IdentityPrefetch }>;
  visitKeys: Set<string>;
  orderKeys: Set<string>;
}

export function emptyPrefetch(): PrefetchKeys {
  return {
    records: [],
    identity: [],
    ssns: new Set(),
    blockKeys: new Set(),
    visitKeys: new Set(),
    orderKeys: new Set(),
  };
}

/** Adds what applying `msg` will look up. */
export function collectPrefetch(
  msg: NormalizedMessage,
  identity: IdentityResolver,
  into: PrefetchKeys,
): void {
  for (const g of groupsOf(msg)) {
    if (g.patient.mrn) {
      into.records.push([g.patient.authority, g.patient.mrn]);
      const needs: IdentityPrefetch = { ssns: new Set(), blockKeys: new Set() };
      identity.prefetch(g.patient, needs);
      into.identity.push({ authority: g.patient.authority, mrn: g.patient.mrn, needs });
    }
    into.visitKeys.add(g.encounter?.visitNumber ?? '');
  }
  if (msg.merge?.priorMrn) {
    into.records.push([msg.merge.priorAuthority, msg.merge.priorMrn]);
  }
  if (msg.merge?.priorVisitNumber) {
    into.visitKeys.add(msg.merge.priorVisitNumber);
  }
  for (const r of msg.results ?? []) {
    into.orderKeys.add(orderKey(r));
  }
}

function groupsOf(msg: NormalizedMessage): PatientGroup[] {
  if (msg.patients) {
    return msg.patients;
  }
  if (!msg.patient) {
    return [];
  }
  return [
    msg.encounter ? { patient: msg.patient, encounter: msg.encounter } : { patient: msg.patient },
  ];
}

/** The stable key of an order: filler number, else placer number, else test code and time. */
export function orderKey(r: OrderResult): string {
  if (r.fillerOrderNumber) {
    return `F:${r.fillerOrderNumber.namespace ?? ''}|${r.fillerOrderNumber.value}`;
  }
  if (r.placerOrderNumber) {
    return `P:${r.placerOrderNumber.namespace ?? ''}|${r.placerOrderNumber.value}`;
  }
  return `T:${r.testCode?.code ?? ''}|${r.observedAt?.value ?? ''}`;
}

/** Applies one normalized message. Never throws on bad content: returns an error outcome. */
export function applyMessage(
  ctx: ApplyContext,
  msg: NormalizedMessage,
  meta: MessageMeta,
): ApplyOutcome {
  const { type, trigger } = msg.event;
  if (!msg.supported) {
    return {
      status: 'ignored',
      reason: `message type ${type || '(none)'} is not applied to the MPI`,
    };
  }
  if (type === 'ADT' && !SUPPORTED_ADT_TRIGGERS.has(trigger)) {
    return {
      status: 'ignored',
      reason: `ADT trigger ${trigger || '(none)'} is not applied to the MPI`,
    };
  }
  const groups = groupsOf(msg);
  if (groups.length === 0) {
    return { status: 'error', code: 'MISSING_PATIENT', reason: 'message has no PID segment' };
  }
  const noId = groups.findIndex((g) => !g.patient.mrn);
  if (noId >= 0) {
    return {
      status: 'error',
      code: 'MISSING_PATIENT_ID',
      reason: `PID ${noId + 1} has no patient identifier (PID-3)`,
    };
  }
  const run = new MessageRun(ctx, msg, meta);
  if (type === 'ORU') {
    run.results(groups[0].patient, msg.results ?? []);
  } else if (MERGE_TRIGGERS.has(trigger) || REKEY_TRIGGERS.has(trigger)) {
    if (!msg.merge?.priorMrn) {
      return {
        status: 'error',
        code: 'MISSING_MRG',
        reason: `ADT^${trigger} needs MRG-1 (the prior patient identifier)`,
      };
    }
    run.mergeOrRekey(groups[0], REKEY_TRIGGERS.has(trigger) ? 'rekey' : 'merge');
  } else if (trigger === 'A24' || trigger === 'A37') {
    if (groups.length < 2) {
      return {
        status: 'error',
        code: 'MISSING_SEGMENT',
        reason: `ADT^${trigger} needs two PID segments`,
      };
    }
    run.linkOrUnlink(groups[0].patient, groups[1].patient, trigger === 'A24');
  } else if (trigger === 'A29') {
    run.deletePerson(groups[0].patient);
  } else if (trigger === 'A23') {
    run.deleteEncounter(groups[0]);
  } else if (trigger === 'A41' || trigger === 'A49') {
    run.accountChange(groups[0].patient);
  } else if (trigger === 'A42') {
    run.visitMerge(groups[0]);
  } else {
    for (const g of groups) {
      const rec = run.upsertRecord(g.patient, true);
      if (g.encounter) {
        run.encounter(rec, g.encounter);
      }
    }
  }
  return { status: 'processed', changed: run.finish() };
}

/** The changes of one message, and the events they raise. */
class MessageRun {
  private readonly ws: WorkingSet;
  private readonly time: number;
  private readonly touchedPersons = new Set<string>();
  private readonly createdPersons = new Set<string>();
  private readonly changedRecords = new Map<string, Set<string>>();
  /** Records created, or whose data or status changed: their blocking keys are recomputed. */
  private readonly touchedRecords = new Set<SourceRecordRow>();
  private changed = false;

  constructor(
    private readonly ctx: ApplyContext,
    private readonly msg: NormalizedMessage,
    private readonly meta: MessageMeta,
  ) {
    this.ws = ctx.ws;
    this.time = dateValueToMs(msg.event.occurredAt) ?? meta.receivedAt.getTime();
  }

  // ---- source records ------------------------------------------------------------------

  /**
   * The record for the patient's authority + MRN, created when new (joining a person on
   * identity evidence, else a new person); demographics merged in unless older than the data
   * already applied.
   */
  upsertRecord(patient: PatientRecord, updateDemographics: boolean): SourceRecordRow {
    const mrn = patient.mrn as string;
    const existing = this.ws.recordByKey(patient.authority, mrn);
    if (!existing) {
      return this.createRecord(patient);
    }
    if (existing.status === 'deleted') {
      // A record deleted by A29 comes back when its source speaks about it again.
      existing.status = 'active';
      this.touchRecordData(existing, new Set(['status']));
      const person = this.ws.person(existing.personEuid);
      if (person.status === 'deleted') {
        person.status = 'active';
        person.updatedAt = this.ctx.now;
        this.ws.touchPerson(person);
      }
    }
    if (updateDemographics && !this.isStale(existing)) {
      const data = mergePatient(existing.data, patient);
      const changed = changedFields(existing.data, data);
      const advanced =
        existing.dataTime !== this.time || existing.lastMessageId !== this.meta.messageId;
      existing.dataTime = this.time;
      existing.lastMessageId = this.meta.messageId;
      if (changed.size > 0) {
        const idsChanged = changed.has('identifiers');
        existing.data = data;
        if (idsChanged) {
          existing.identifiers = identifierRows(data.identifiers, existing.identifiers);
        }
        this.touchRecordData(existing, changed, idsChanged);
      } else if (advanced) {
        this.ws.touchRecord(existing);
      }
    }
    return existing;
  }

  /**
   * Older than what the record holds: an earlier event time, or the same time from a message
   * that arrived earlier than the one applied last (message ids are in arrival order).
   */
  private isStale(rec: SourceRecordRow): boolean {
    return (
      this.time < rec.dataTime ||
      (this.time === rec.dataTime &&
        rec.lastMessageId !== null &&
        this.meta.messageId !== null &&
        this.meta.messageId < rec.lastMessageId)
    );
  }

  private createRecord(patient: PatientRecord, status: SourceRecordRow['status'] = 'active') {
    const match = status === 'active' ? this.ctx.identity.resolve(this.ws, patient) : undefined;
    const euid = match?.euid ?? this.createPerson();
    if (match && !match.euid && match.reviews?.length) {
      this.event('duplicate.suspected', euid, {
        euid,
        candidates: match.reviews.map((r) => ({ euid: r.euid, score: r.score })),
        messageId: this.meta.messageId,
      });
    }
    const data = definedOnly(patient);
    const rec: SourceRecordRow = {
      id: this.ctx.newId(),
      authority: patient.authority,
      mrn: patient.mrn as string,
      personEuid: euid,
      status,
      mergedInto: null,
      data,
      dataTime: this.time,
      lastMessageId: this.meta.messageId,
      version: 0,
      createdAt: this.ctx.now,
      updatedAt: this.ctx.now,
      identifiers: identifierRows(data.identifiers, []),
    };
    this.ws.createRecord(rec);
    this.touchedPersons.add(euid);
    this.touchedRecords.add(rec);
    this.changed = true;
    if (match?.euid) {
      this.changedRecords.set(rec.id, new Set(['record']));
    }
    for (const review of match?.reviews ?? []) {
      this.ws.tasks.push({
        id: this.ctx.newId(),
        pairKey: pairKey(review.recordId, rec.id),
        leftRecordId: review.recordId,
        rightRecordId: rec.id,
        leftEuid: review.euid,
        rightEuid: euid,
        score: review.score,
        breakdown: review.breakdown,
        facility: rec.authority,
        status: 'open',
        messageId: this.meta.messageId,
        createdAt: this.ctx.now,
      });
    }
    return rec;
  }

  private createPerson(): string {
    const p: PersonRow = {
      euid: this.ctx.newId(),
      status: 'active',
      mergedInto: null,
      golden: {},
      provenance: {},
      version: 0,
      createdAt: this.ctx.now,
      updatedAt: this.ctx.now,
    };
    this.ws.createPerson(p);
    this.createdPersons.add(p.euid);
    return p.euid;
  }

  private touchRecordData(rec: SourceRecordRow, fields: Set<string>, idsChanged = false): void {
    rec.updatedAt = this.ctx.now;
    this.touchedRecords.add(rec);
    this.ws.touchRecord(rec, idsChanged);
    this.touchedPersons.add(rec.personEuid);
    const set = this.changedRecords.get(rec.id) ?? new Set<string>();
    fields.forEach((f) => set.add(f));
    this.changedRecords.set(rec.id, set);
    this.changed = true;
  }

  // ---- encounters ----------------------------------------------------------------------

  encounter(rec: SourceRecordRow, incoming: Encounter, forced?: StoredEncounterStatus): void {
    const owner = this.ws.owner(rec);
    const visitKey = incoming.visitNumber ?? '';
    const found = this.ws.encounter(owner.id, visitKey);
    const trigger = this.msg.event.trigger;
    if (!found) {
      if (forced === 'entered-in-error') {
        return; // deleting an encounter never seen
      }
      const e: EncounterRow = {
        id: this.ctx.newId(),
        originRecordId: owner.id,
        visitKey,
        sourceRecordId: owner.id,
        status: forced ?? incoming.status ?? 'unknown',
        data: definedOnly(incoming),
        dataTime: this.time,
        createdAt: this.ctx.now,
        updatedAt: this.ctx.now,
      };
      this.ws.createEncounter(e);
      this.event('encounter.created', owner.personEuid, encounterPayload(e, trigger, owner));
      this.changed = true;
      return;
    }
    if (this.time < found.dataTime) {
      return; // older than what is applied
    }
    const data: Encounter = { ...found.data, ...definedOnly(incoming) };
    if (trigger === 'A13') {
      delete data.dischargeAt; // cancel discharge
      delete data.dischargeDisposition;
    }
    const status = forced ?? incoming.status ?? found.status;
    found.dataTime = this.time;
    if (jsonEqual(data, found.data) && status === found.status) {
      this.ws.touchEncounter(found);
      return;
    }
    found.data = data;
    found.status = status;
    found.updatedAt = this.ctx.now;
    this.ws.touchEncounter(found);
    this.event(
      status === 'entered-in-error' ? 'encounter.deleted' : 'encounter.updated',
      owner.personEuid,
      encounterPayload(found, trigger, owner),
    );
    this.changed = true;
  }

  deleteEncounter(g: PatientGroup): void {
    const rec = this.upsertRecord(g.patient, true);
    if (g.encounter) {
      this.encounter(rec, g.encounter, 'entered-in-error');
    }
  }

  visitMerge(g: PatientGroup): void {
    const rec = this.upsertRecord(g.patient, true);
    const priorVisit = this.msg.merge?.priorVisitNumber;
    const visit = g.encounter?.visitNumber;
    if (!priorVisit || !visit || priorVisit === visit) {
      if (g.encounter) {
        this.encounter(rec, g.encounter);
      }
      return;
    }
    const owner = this.ws.owner(rec);
    const prior = this.ws.encounter(owner.id, priorVisit);
    const survivor = this.ws.encounter(owner.id, visit);
    if (prior && prior.status !== 'merged') {
      if (survivor) {
        prior.status = 'merged';
        prior.data = { ...prior.data, mergedIntoVisit: visit } as Encounter;
      } else {
        prior.visitKey = visit;
        prior.data = { ...prior.data, visitNumber: visit };
      }
      prior.updatedAt = this.ctx.now;
      this.ws.touchEncounter(prior);
      this.event('encounter.merged', owner.personEuid, {
        ...encounterPayload(prior, this.msg.event.trigger, owner),
        priorVisitNumber: priorVisit,
        visitNumber: visit,
      });
      this.changed = true;
    }
    if (g.encounter) {
      this.encounter(rec, g.encounter);
    }
  }

  // ---- results -------------------------------------------------------------------------

  results(patient: PatientRecord, orders: OrderResult[]): void {
    const rec = this.upsertRecord(patient, this.ctx.resultsUpdateDemographics);
    const owner = this.ws.owner(rec);
    for (const order of orders) {
      const key = orderKey(order);
      const found = this.ws.result(owner.id, key);
      const data = definedOnly(order);
      if (!found) {
        const r: ResultRow = {
          id: this.ctx.newId(),
          originRecordId: owner.id,
          orderKey: key,
          sourceRecordId: owner.id,
          status: order.status ?? '',
          data,
          dataTime: this.time,
          createdAt: this.ctx.now,
          updatedAt: this.ctx.now,
        };
        this.ws.createResult(r);
        this.event('result.created', owner.personEuid, resultPayload(r, owner));
        this.changed = true;
        continue;
      }
      if (this.time < found.dataTime || jsonEqual(found.data, data)) {
        continue; // an older report, or nothing new
      }
      found.dataTime = this.time;
      found.data = data;
      found.status = order.status ?? found.status;
      found.updatedAt = this.ctx.now;
      this.ws.touchResult(found);
      const corrected = order.status === 'C' || order.observations.some((o) => o.status === 'C');
      this.event(
        corrected ? 'result.corrected' : 'result.updated',
        owner.personEuid,
        resultPayload(found, owner),
      );
      this.changed = true;
    }
  }

  // ---- merges, identifier changes, links -----------------------------------------------

  /**
   * A18/A30/A34/A39/A40 (merge) and A46/A47 (re-key): the MRG-1 prior record into the PID-3
   * survivor. A re-key whose new identifier is not yet known renames the prior record instead.
   */
  mergeOrRekey(g: PatientGroup, mode: 'merge' | 'rekey'): void {
    const merge = this.msg.merge!;
    const patient = g.patient;
    const priorMrn = merge.priorMrn as string;
    const prior = this.ws.recordByKey(merge.priorAuthority, priorMrn);
    const sameKey = merge.priorAuthority === patient.authority && priorMrn === patient.mrn;
    if (
      mode === 'rekey' &&
      prior &&
      prior.status === 'active' &&
      !sameKey &&
      !this.ws.recordByKey(patient.authority, patient.mrn as string)
    ) {
      const before = snapshotRecord(prior);
      this.ws.rekeyRecord(prior, patient.authority, patient.mrn as string);
      prior.identifiers = addRetired(prior.identifiers, [
        { authority: merge.priorAuthority, value: priorMrn, type: 'MR' },
      ]);
      this.touchRecordData(prior, new Set(['identifiers']), true);
      this.history('identifier-change', prior.personEuid, prior.personEuid, prior.id, {
        record: before,
      });
      this.event('identifier.changed', prior.personEuid, {
        euid: prior.personEuid,
        prior: { authority: merge.priorAuthority, mrn: priorMrn },
        current: { authority: patient.authority, mrn: patient.mrn },
        messageId: this.meta.messageId,
        trigger: this.msg.event.trigger,
      });
      this.upsertRecord(patient, true);
      if (g.encounter) {
        this.encounter(prior, g.encounter);
      }
      return;
    }
    const survivor = this.upsertRecord(patient, true);
    if (!sameKey) {
      this.mergeRecords(prior, survivor, merge.priorAuthority, priorMrn, merge.priorIdentifiers);
    }
    if (g.encounter) {
      this.encounter(survivor, g.encounter);
    }
  }

  private mergeRecords(
    prior: SourceRecordRow | undefined,
    survivor: SourceRecordRow,
    priorAuthority: string,
    priorMrn: string,
    priorIdentifiers: Identifier[],
  ): void {
    const target = this.ws.owner(survivor);
    if (prior?.status === 'merged') {
      prior = this.ws.owner(prior); // merge what the prior record stands for now
    }
    if (!prior) {
      // Never seen: keep a merged stub so later messages about the old MRN reach the survivor.
      const stub = this.createRecordStub(priorAuthority, priorMrn, priorIdentifiers, target);
      target.identifiers = addRetired(target.identifiers, stub.identifiers);
      this.touchRecordData(target, new Set(['identifiers']), true);
      this.history('merge', target.personEuid, target.personEuid, stub.id, { record: null });
      this.mergedEvent(target, stub, target.personEuid);
      return;
    }
    if (prior.id === target.id) {
      return; // already merged (a replay, or a repeated merge)
    }
    const priorPerson = this.ws.person(prior.personEuid);
    const before = {
      record: snapshotRecord(prior),
      survivor: snapshotRecord(target),
      person: snapshotPerson(priorPerson),
    };
    prior.status = 'merged';
    prior.mergedInto = target.id;
    this.touchRecordData(prior, new Set(['status']));
    target.identifiers = addRetired(
      target.identifiers,
      prior.identifiers
        .filter((i) => !i.retired)
        .concat(prior.identifiers.filter((i) => i.retired)),
    );
    this.touchRecordData(target, new Set(['identifiers']), true);
    this.ws.moveChildren(prior.id, target.id, this.ctx.now);
    // Records merged into the prior one earlier now end at the survivor through the chain.
    this.movePersonIfEmptied(priorPerson, target.personEuid, prior);
    this.history('merge', target.personEuid, priorPerson.euid, prior.id, before);
    this.mergedEvent(target, prior, priorPerson.euid);
  }

  private createRecordStub(
    authority: string,
    mrn: string,
    identifiers: Identifier[],
    target: SourceRecordRow,
  ): SourceRecordRow {
    const data: PatientRecord = {
      authority,
      mrn,
      identifiers,
      names: this.msg.merge?.priorName ? [this.msg.merge.priorName] : [],
      addresses: [],
      telecom: [],
    };
    const rec: SourceRecordRow = {
      id: this.ctx.newId(),
      authority,
      mrn,
      personEuid: target.personEuid,
      status: 'merged',
      mergedInto: target.id,
      data,
      dataTime: this.time,
      lastMessageId: this.meta.messageId,
      version: 0,
      createdAt: this.ctx.now,
      updatedAt: this.ctx.now,
      identifiers: identifierRows(identifiers, []),
    };
    this.ws.createRecord(rec);
    this.changed = true;
    return rec;
  }

  /**
   * After `moved` left `person` for `survivorEuid`: when the person has no active record left,
   * it is merged into the survivor person and its remaining (merged/deleted) records follow.
   */
  private movePersonIfEmptied(person: PersonRow, survivorEuid: string, moved: SourceRecordRow) {
    moved.personEuid = survivorEuid;
    if (person.euid === survivorEuid) {
      return;
    }
    this.touchedPersons.add(person.euid);
    this.touchedPersons.add(survivorEuid);
    const rest = this.ws.recordsOf(person.euid);
    if (rest.some((r) => r.status === 'active')) {
      return;
    }
    for (const r of rest) {
      r.personEuid = survivorEuid;
      this.touchRecordData(r, new Set(['person']));
    }
    person.status = 'merged';
    person.mergedInto = survivorEuid;
    person.updatedAt = this.ctx.now;
    this.ws.touchPerson(person);
  }

  private mergedEvent(target: SourceRecordRow, retired: SourceRecordRow, retiredEuid: string) {
    this.event('patient.merged', target.personEuid, {
      euid: target.personEuid,
      retiredEuid: retiredEuid === target.personEuid ? undefined : retiredEuid,
      survivor: { authority: target.authority, mrn: target.mrn },
      retired: { authority: retired.authority, mrn: retired.mrn },
      messageId: this.meta.messageId,
      trigger: this.msg.event.trigger,
    });
  }

  /** A24 links the second record to the first one's person; A37 separates them again. */
  linkOrUnlink(first: PatientRecord, second: PatientRecord, link: boolean): void {
    const a = this.ws.owner(this.upsertRecord(first, true));
    const b = this.ws.owner(this.upsertRecord(second, true));
    if (a.id === b.id) {
      return;
    }
    if (link) {
      if (a.personEuid === b.personEuid) {
        return;
      }
      const from = this.ws.person(b.personEuid);
      const before = { record: snapshotRecord(b), person: snapshotPerson(from) };
      this.touchRecordData(b, new Set(['person']));
      this.movePersonIfEmptied(from, a.personEuid, b);
      this.history('link', a.personEuid, from.euid, b.id, before);
      this.event('patient.linked', a.personEuid, {
        euid: a.personEuid,
        linkedEuid: from.euid,
        records: [
          { authority: a.authority, mrn: a.mrn },
          { authority: b.authority, mrn: b.mrn },
        ],
        messageId: this.meta.messageId,
      });
      return;
    }
    if (a.personEuid !== b.personEuid) {
      return;
    }
    const before = { record: snapshotRecord(b) };
    const euid = this.createPerson();
    b.personEuid = euid;
    this.touchRecordData(b, new Set(['person']));
    this.touchedPersons.add(a.personEuid);
    this.touchedPersons.add(euid);
    this.history('unlink', a.personEuid, euid, b.id, before);
    this.event('patient.unlinked', a.personEuid, {
      euid: a.personEuid,
      unlinkedEuid: euid,
      records: [
        { authority: a.authority, mrn: a.mrn },
        { authority: b.authority, mrn: b.mrn },
      ],
      messageId: this.meta.messageId,
    });
  }

  /** A29: the source record is deleted; a person left without active records is deleted. */
  deletePerson(patient: PatientRecord): void {
    const rec = this.ws.recordByKey(patient.authority, patient.mrn as string);
    if (!rec || rec.status !== 'active' || this.isStale(rec)) {
      return;
    }
    const before = { record: snapshotRecord(rec) };
    rec.status = 'deleted';
    rec.dataTime = this.time;
    this.touchRecordData(rec, new Set(['status']));
    const person = this.ws.person(rec.personEuid);
    this.history('delete', null, person.euid, rec.id, before);
    if (!this.ws.recordsOf(person.euid).some((r) => r.status === 'active')) {
      person.status = 'deleted';
      person.updatedAt = this.ctx.now;
      this.ws.touchPerson(person);
    }
    this.event('patient.deleted', person.euid, {
      euid: person.euid,
      record: { authority: rec.authority, mrn: rec.mrn },
      personDeleted: person.status === 'deleted',
      messageId: this.meta.messageId,
    });
  }

  /** A41 (account merge) and A49 (account number change): MRG-3 → PID-18. */
  accountChange(patient: PatientRecord): void {
    const rec = this.upsertRecord(patient, true);
    const prior = this.msg.merge?.priorAccountNumber;
    if (prior && patient.accountNumber && prior !== patient.accountNumber) {
      this.event('identifier.changed', rec.personEuid, {
        euid: rec.personEuid,
        kind: 'account',
        record: { authority: rec.authority, mrn: rec.mrn },
        priorAccountNumber: prior,
        accountNumber: patient.accountNumber,
        messageId: this.meta.messageId,
        trigger: this.msg.event.trigger,
      });
    }
  }

  // ---- end of message: golden records and patient events ------------------------------

  /** Recomputes golden records of touched persons and raises patient events. */
  finish(): boolean {
    for (const r of this.touchedRecords) {
      const keys = r.status === 'active' ? this.ctx.identity.blockKeys(r.data) : [];
      const stored = this.ws.loadedState(r.id);
      if (stored && !this.ws.blocks.has(r.id)) {
        // Rewrite the stored keys only when they change (most updates keep them).
        const before = stored.status === 'active' ? this.ctx.identity.blockKeys(stored.data) : [];
        if (sameKeys(before, keys)) {
          continue;
        }
      }
      this.ws.setBlocks(r.id, keys);
    }
    for (const euid of this.touchedPersons) {
      const person = this.ws.person(euid);
      if (person.status !== 'active') {
        continue; // a merged or deleted person keeps its last golden record
      }
      const active = this.ws.recordsOf(euid).filter((r) => r.status === 'active');
      const { golden, provenance } = computeGolden(
        active.map((r) => ({
          id: r.id,
          authority: r.authority,
          mrn: r.mrn,
          dataTime: r.dataTime,
          data: r.data,
        })),
        this.ctx.survivorship,
      );
      const goldenChanged = !jsonEqual(golden, person.golden);
      if (goldenChanged || !jsonEqual(provenance, person.provenance)) {
        person.golden = golden;
        person.provenance = provenance;
        person.updatedAt = this.ctx.now;
        this.ws.touchPerson(person);
        this.changed = true;
      }
      const records = active.map((r) => ({ authority: r.authority, mrn: r.mrn }));
      if (this.createdPersons.has(euid)) {
        this.event('patient.created', euid, { euid, golden, records, ...this.source() });
        continue;
      }
      const changes = [...this.changedRecords]
        .filter(([id]) => this.ws.record(id).personEuid === euid)
        .map(([id, fields]) => {
          const r = this.ws.record(id);
          return { authority: r.authority, mrn: r.mrn, fields: [...fields].sort() };
        });
      if (goldenChanged || changes.length > 0) {
        this.event('patient.updated', euid, { euid, golden, records, changes, ...this.source() });
      }
    }
    return this.changed;
  }

  private source() {
    return { messageId: this.meta.messageId, trigger: this.msg.event.trigger };
  }

  private event(type: EventType, euid: string, payload: Record<string, unknown>): void {
    this.ws.events.push({
      type,
      euid,
      messageId: this.meta.messageId,
      payload: definedOnly(payload),
      createdAt: this.ctx.now,
    });
    this.changed = true;
  }

  private history(
    kind: HistoryKind,
    survivorEuid: string | null,
    subjectEuid: string | null,
    sourceRecordId: string | null,
    before: Record<string, unknown>,
  ): void {
    this.ws.history.push({
      id: this.ctx.newId(),
      kind,
      survivorEuid,
      subjectEuid,
      sourceRecordId,
      messageId: this.meta.messageId,
      actor: 'message',
      reason: `${this.msg.event.type}^${this.msg.event.trigger}`,
      before,
      createdAt: this.ctx.now,
    });
  }
}

// ---- helpers -------------------------------------------------------------------------

function sameKeys(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((k) => sb.has(k));
}

/**
 * Merges an update into stored data: a field not sent (undefined, or an empty repeating field)
 * keeps the stored value; `null` (HL7 `""`) deletes it; identifiers are replaced per HL7 field
 * they came from (PID-2, PID-3, PID-4, PID-19), so an update without PID-19 keeps the SSN.
 */
export function mergePatient(stored: PatientRecord, update: PatientRecord): PatientRecord {
  const out = { ...stored } as Record<string, unknown>;
  for (const [k, v] of Object.entries(update)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) {
      continue;
    }
    if (k === 'identifiers') {
      const incoming = v as Identifier[];
      const sources = new Set(incoming.map((i) => i.source));
      out.identifiers = stored.identifiers.filter((i) => !sources.has(i.source)).concat(incoming);
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    out[k] = v;
  }
  return out as unknown as PatientRecord;
}

function changedFields(a: PatientRecord, b: PatientRecord): Set<string> {
  const out = new Set<string>();
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const av = (a as unknown as Record<string, unknown>)[k];
    const bv = (b as unknown as Record<string, unknown>)[k];
    if (!jsonEqual(av, bv)) {
      out.add(k);
    }
  }
  return out;
}

function identifierKey(i: { authority: string; value: string; type: string }): string {
  return `${i.authority}\u001f${i.value}\u001f${i.type}`;
}

/** Current identifiers from the record data, plus the retired ones kept; unique by key. */
function identifierRows(current: Identifier[], previous: IdentifierRow[]): IdentifierRow[] {
  const out = new Map<string, IdentifierRow>();
  for (const i of current) {
    if (i.value) {
      out.set(identifierKey(i), {
        authority: i.authority,
        value: i.value,
        type: i.type,
        retired: false,
      });
    }
  }
  for (const i of previous) {
    if (i.retired && !out.has(identifierKey(i))) {
      out.set(identifierKey(i), i);
    }
  }
  return [...out.values()];
}

function addRetired(
  rows: IdentifierRow[],
  more: Array<{ authority: string; value: string; type: string }>,
): IdentifierRow[] {
  const out = new Map(rows.map((r) => [identifierKey(r), r]));
  for (const m of more) {
    if (m.value && !out.has(identifierKey(m))) {
      out.set(identifierKey(m), {
        authority: m.authority,
        value: m.value,
        type: m.type,
        retired: true,
      });
    }
  }
  return [...out.values()];
}

function snapshotRecord(r: SourceRecordRow): Record<string, unknown> {
  return {
    id: r.id,
    authority: r.authority,
    mrn: r.mrn,
    personEuid: r.personEuid,
    status: r.status,
    mergedInto: r.mergedInto,
    identifiers: r.identifiers,
  };
}

function snapshotPerson(p: PersonRow): Record<string, unknown> {
  return { euid: p.euid, status: p.status, mergedInto: p.mergedInto };
}

function encounterPayload(e: EncounterRow, trigger: string, owner: SourceRecordRow) {
  return {
    euid: owner.personEuid,
    encounterId: e.id,
    visitNumber: e.visitKey || undefined,
    status: e.status,
    class: e.data.class,
    record: { authority: owner.authority, mrn: owner.mrn },
    trigger,
  };
}

function resultPayload(r: ResultRow, owner: SourceRecordRow) {
  return {
    euid: owner.personEuid,
    resultId: r.id,
    orderKey: r.orderKey,
    status: r.status || undefined,
    testCode: r.data.testCode,
    record: { authority: owner.authority, mrn: owner.mrn },
  };
}
