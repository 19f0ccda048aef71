import type { SurvivorshipConfig } from '@engine/config';
import { jsonEqual } from './equal';
import type {
  DuplicateTaskStatus,
  EventType,
  HistoryRow,
  PersonRow,
  SourceRecordRow,
} from './rows';
import { computeGolden } from './survivorship';
import type { WorkingSet } from './working-set';

/**
 * MPI operations a person decides (medical records technicians on the worklist, or an unmerge):
 * person merges, record links, dismissals and their reversal. Synchronous over a working set
 * prefetched by `MpiStore.prefetchPersons`; every change records its before state in
 * `mpi_history` and raises a domain event, written in one transaction by `MpiStore.flush`.
 */

export class OperationError extends Error {
  constructor(
    readonly code: 'not-found' | 'conflict' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export interface OperationContext {
  ws: WorkingSet;
  now: Date;
  newId: () => string;
  /** Who decided (user name or key id): recorded in history, events and the task. */
  actor: string;
  reason: string;
  survivorship: SurvivorshipConfig;
}

export type DecisionAction = 'merge' | 'link' | 'not-duplicate' | 'defer';

export interface TaskRef {
  id: string;
  leftRecordId: string;
  rightRecordId: string;
  leftEuid: string;
  rightEuid: string;
  status: DuplicateTaskStatus;
}

/** The person a (possibly merged) person stands for now. */
function current(ws: WorkingSet, euid: string): PersonRow {
  let p = ws.person(euid);
  for (let i = 0; i < 64 && p.status === 'merged' && p.mergedInto; i++) {
    p = ws.person(p.mergedInto);
  }
  return p;
}

function snapshotPerson(p: PersonRow) {
  return { euid: p.euid, status: p.status, mergedInto: p.mergedInto };
}

/** Applies a worklist decision. */
export function decideTask(
  ctx: OperationContext,
  task: TaskRef,
  action: DecisionAction,
  survivor?: string,
): void {
  if (task.status !== 'open' && task.status !== 'deferred') {
    throw new OperationError('conflict', `task already decided (${task.status})`);
  }
  const left = current(ctx.ws, task.leftEuid);
  const right = current(ctx.ws, task.rightEuid);
  const decision = (status: Exclude<DuplicateTaskStatus, 'open'>) =>
    ctx.ws.taskDecisions.push({
      id: task.id,
      status,
      decidedBy: ctx.actor,
      reason: ctx.reason,
      decidedAt: ctx.now,
    });
  switch (action) {
    case 'not-duplicate':
    case 'defer':
      decision(action === 'defer' ? 'deferred' : 'not-duplicate');
      event(ctx, 'duplicate.resolved', left.euid, {
        taskId: task.id,
        decision: action,
        euids: [left.euid, right.euid],
        actor: ctx.actor,
      });
      return;
    case 'merge':
    case 'link': {
      if (left.euid === right.euid) {
        throw new OperationError('conflict', 'the two records already belong to one person');
      }
      const target = survivor ?? left.euid;
      if (target !== left.euid && target !== right.euid) {
        throw new OperationError('invalid', 'survivor must be one of the two persons');
      }
      const other = target === left.euid ? right : left;
      if (action === 'merge') {
        mergePersons(ctx, target, other.euid, task.id);
      } else {
        const recordId = other === right ? task.rightRecordId : task.leftRecordId;
        linkRecord(ctx, target, recordId, task.id);
      }
      decision(action === 'merge' ? 'merged' : 'linked');
      return;
    }
  }
}

/** Every record of `otherEuid` joins `survivorEuid`; the other person is retired (merged). */
export function mergePersons(
  ctx: OperationContext,
  survivorEuid: string,
  otherEuid: string,
  taskId?: string,
): void {
  const { ws } = ctx;
  const survivor = current(ws, survivorEuid);
  const other = current(ws, otherEuid);
  if (survivor.status !== 'active' || other.status !== 'active') {
    throw new OperationError('conflict', 'both persons must be active');
  }
  if (survivor.euid === other.euid) {
    throw new OperationError('conflict', 'already one person');
  }
  const records = ws.recordsOf(other.euid);
  const before = {
    persons: [snapshotPerson(survivor), snapshotPerson(other)],
    records: records.map((r) => ({ id: r.id, personEuid: r.personEuid })),
  };
  for (const r of records) {
    moveRecord(ctx, r, survivor.euid);
  }
  other.status = 'merged';
  other.mergedInto = survivor.euid;
  other.updatedAt = ctx.now;
  ws.touchPerson(other);
  history(ctx, 'merge', survivor.euid, other.euid, null, before);
  refreshGolden(ctx, survivor);
  event(ctx, 'patient.merged', survivor.euid, {
    euid: survivor.euid,
    retiredEuid: other.euid,
    golden: survivor.golden,
    records: records.map((r) => ({ authority: r.authority, mrn: r.mrn })),
    taskId,
    actor: ctx.actor,
    reason: ctx.reason,
  });
}

/** One record joins `targetEuid`; its person is retired when left without active records. */
export function linkRecord(
  ctx: OperationContext,
  targetEuid: string,
  recordId: string,
  taskId?: string,
): void {
  const { ws } = ctx;
  const target = current(ws, targetEuid);
  const record = ws.record(recordId);
  const from = current(ws, record.personEuid);
  if (target.status !== 'active' || from.euid === target.euid) {
    throw new OperationError('conflict', 'the record already belongs to that person');
  }
  const rest = ws.recordsOf(from.euid).filter((r) => r.id !== record.id);
  const emptied = !rest.some((r) => r.status === 'active');
  const moved = emptied ? [record, ...rest] : [record];
  const before = {
    persons: [snapshotPerson(target), snapshotPerson(from)],
    records: moved.map((r) => ({ id: r.id, personEuid: r.personEuid })),
  };
  moved.forEach((r) => moveRecord(ctx, r, target.euid));
  if (emptied) {
    from.status = 'merged';
    from.mergedInto = target.euid;
    from.updatedAt = ctx.now;
    ws.touchPerson(from);
  } else {
    refreshGolden(ctx, from);
  }
  history(ctx, 'link', target.euid, from.euid, record.id, before);
  refreshGolden(ctx, target);
  event(ctx, 'patient.linked', target.euid, {
    euid: target.euid,
    linkedEuid: from.euid,
    record: { authority: record.authority, mrn: record.mrn },
    golden: target.golden,
    taskId,
    actor: ctx.actor,
    reason: ctx.reason,
  });
}

interface PersonMergeBefore {
  persons: Array<{ euid: string; status: PersonRow['status']; mergedInto: string | null }>;
  records: Array<{ id: string; personEuid: string }>;
}

function isPersonMerge(
  before: Record<string, unknown>,
): before is Record<string, unknown> & PersonMergeBefore {
  return Array.isArray(before.persons) && Array.isArray(before.records);
}

/**
 * Reverses a person merge or a link: every record goes back to the person it belonged to, the
 * retired person becomes active again, golden records are recomputed. Record-level merges sent
 * by a source system (ADT^A40 …) are corrected by the source, not here.
 */
export function unmerge(ctx: OperationContext, merge: HistoryRow): void {
  const { ws } = ctx;
  if ((merge.kind !== 'merge' && merge.kind !== 'link') || !isPersonMerge(merge.before)) {
    throw new OperationError(
      'conflict',
      'only person merges and links can be undone here; a record merge sent by a source system is corrected by that source',
    );
  }
  const before = merge.before;
  const involved = new Set<string>();
  const now = {
    persons: before.persons.map((p) => snapshotPerson(ws.person(p.euid))),
    records: before.records.map((r) => ({ id: r.id, personEuid: ws.record(r.id).personEuid })),
  };
  for (const r of before.records) {
    const rec = ws.record(r.id);
    involved.add(rec.personEuid);
    moveRecord(ctx, rec, r.personEuid);
    involved.add(r.personEuid);
  }
  for (const p of before.persons) {
    const person = ws.person(p.euid);
    person.status = p.status;
    person.mergedInto = p.mergedInto;
    person.updatedAt = ctx.now;
    ws.touchPerson(person);
    involved.add(p.euid);
  }
  history(ctx, 'unmerge', merge.survivorEuid, merge.subjectEuid, merge.sourceRecordId, {
    historyId: merge.id,
    ...now,
  });
  for (const euid of involved) {
    const p = ws.person(euid);
    if (p.status === 'active') {
      refreshGolden(ctx, p);
    }
  }
  event(ctx, 'patient.unmerged', merge.survivorEuid ?? before.persons[0].euid, {
    euid: merge.survivorEuid,
    restoredEuid: merge.subjectEuid,
    historyId: merge.id,
    actor: ctx.actor,
    reason: ctx.reason,
  });
}

function moveRecord(ctx: OperationContext, r: SourceRecordRow, euid: string): void {
  if (r.personEuid === euid) {
    return;
  }
  r.personEuid = euid;
  r.updatedAt = ctx.now;
  ctx.ws.touchRecord(r);
}

function refreshGolden(ctx: OperationContext, person: PersonRow): void {
  const active = ctx.ws.recordsOf(person.euid).filter((r) => r.status === 'active');
  const { golden, provenance } = computeGolden(
    active.map((r) => ({
      id: r.id,
      authority: r.authority,
      mrn: r.mrn,
      dataTime: r.dataTime,
      data: r.data,
    })),
    ctx.survivorship,
  );
  if (!jsonEqual(golden, person.golden) || !jsonEqual(provenance, person.provenance)) {
    person.golden = golden;
    person.provenance = provenance;
    person.updatedAt = ctx.now;
    ctx.ws.touchPerson(person);
  }
}

function history(
  ctx: OperationContext,
  kind: HistoryRow['kind'],
  survivorEuid: string | null,
  subjectEuid: string | null,
  sourceRecordId: string | null,
  before: Record<string, unknown>,
): void {
  ctx.ws.history.push({
    id: ctx.newId(),
    kind,
    survivorEuid,
    subjectEuid,
    sourceRecordId,
    messageId: null,
    actor: ctx.actor,
    reason: ctx.reason,
    before,
    createdAt: ctx.now,
  });
}

function event(
  ctx: OperationContext,
  type: EventType,
  euid: string,
  payload: Record<string, unknown>,
): void {
  ctx.ws.events.push({ type, euid, messageId: null, payload, createdAt: ctx.now });
}
