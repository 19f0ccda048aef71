import type { GoldenRecord, Provenance } from './golden';
import type { DateValue, Encounter, OrderResult, PatientRecord } from './model';

/**
 * In-memory shapes of the MPI tables (see the migration `CreateMpi1764316800002`). The apply
 * logic works on these; `MpiStore` loads and writes them.
 */

export type PersonStatus = 'active' | 'merged' | 'deleted';
export type RecordStatus = 'active' | 'merged' | 'deleted';

export interface PersonRow {
  euid: string;
  status: PersonStatus;
  /** The surviving person when merged. */
  mergedInto: string | null;
  golden: GoldenRecord;
  provenance: Provenance;
  /** Optimistic lock: the version read; a write requires it unchanged. 0 for a new row. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface IdentifierRow {
  authority: string;
  value: string;
  type: string;
  /** Taken over from a merged or re-keyed record (still found by search, not current). */
  retired: boolean;
}

export interface SourceRecordRow {
  id: string;
  authority: string;
  mrn: string;
  personEuid: string;
  status: RecordStatus;
  /** The surviving source record when merged. */
  mergedInto: string | null;
  /** What the source says now: every update merged in (absent fields kept, `""` deleted). */
  data: PatientRecord;
  /** Epoch ms of the newest message applied (EVN-2/MSH-7, else the time received). */
  dataTime: number;
  lastMessageId: string | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  identifiers: IdentifierRow[];
}

/** Encounter states: the model's, plus `entered-in-error` (A23 deletion) and `merged` (A42). */
export type StoredEncounterStatus =
  NonNullable<Encounter['status']> | 'unknown' | 'entered-in-error' | 'merged';

export interface EncounterRow {
  id: string;
  /** The record the encounter arrived for; with visitKey, the unique key. */
  originRecordId: string;
  /** PV1-19 visit number; '' when the sender gave none (one such encounter per record). */
  visitKey: string;
  /** The record that owns the encounter now (a merge moves it to the survivor). */
  sourceRecordId: string;
  status: StoredEncounterStatus;
  data: Encounter;
  dataTime: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ResultRow {
  id: string;
  originRecordId: string;
  /** `F:<namespace>|<filler order>`, else `P:…` placer order, else `T:<test code>|<time>`. */
  orderKey: string;
  sourceRecordId: string;
  /** OBR-25 result status (F, C, P, …); '' when not sent. */
  status: string;
  data: OrderResult;
  /** Epoch ms of the newest message applied (an older report never overwrites a newer one). */
  dataTime: number;
  createdAt: Date;
  updatedAt: Date;
}

export const EVENT_TYPES = [
  'patient.created',
  'patient.updated',
  'patient.merged',
  'patient.linked',
  'patient.unlinked',
  'patient.unmerged',
  'duplicate.resolved',
  'patient.deleted',
  'duplicate.suspected',
  'identifier.changed',
  'encounter.created',
  'encounter.updated',
  'encounter.merged',
  'encounter.deleted',
  'result.created',
  'result.updated',
  'result.corrected',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRow {
  type: EventType;
  euid: string;
  messageId: string | null;
  payload: Record<string, unknown>;
  createdAt: Date;
}

export type HistoryKind = 'merge' | 'link' | 'unlink' | 'unmerge' | 'identifier-change' | 'delete';

export interface HistoryRow {
  id: string;
  kind: HistoryKind;
  survivorEuid: string | null;
  subjectEuid: string | null;
  sourceRecordId: string | null;
  messageId: string | null;
  /** 'message' for changes a sender asked for; a user name for MRT decisions. */
  actor: string;
  reason: string;
  /** The rows as they were before (what an unmerge restores). */
  before: Record<string, unknown>;
  createdAt: Date;
}

export type DuplicateTaskStatus = 'open' | 'merged' | 'linked' | 'not-duplicate' | 'deferred';

/** A pair of source records on the duplicate worklist (table `mpi_duplicate_task`). */
export interface DuplicateTaskRow {
  id: string;
  /** The two record ids, sorted, joined by '|': unique. */
  pairKey: string;
  leftRecordId: string;
  rightRecordId: string;
  leftEuid: string;
  rightEuid: string;
  score: number;
  breakdown: unknown;
  /** Assigning authority of the record that raised the task. */
  facility: string;
  status: DuplicateTaskStatus;
  messageId: string | null;
  createdAt: Date;
}

/** A decision on a worklist task, written with the MPI changes it causes. */
export interface TaskDecisionRow {
  id: string;
  status: Exclude<DuplicateTaskStatus, 'open'>;
  decidedBy: string;
  reason: string;
  decidedAt: Date;
}

export function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** A bulk re-parenting of encounters and results (a merge), applied in order at flush. */
export interface ChildMove {
  fromRecordId: string;
  toRecordId: string;
}

/** When a message's event happened, for "older data never overwrites newer". */
export interface MessageTime {
  value?: DateValue;
  /** Epoch ms. */
  ms: number;
}
