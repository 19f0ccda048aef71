/** One audited action: a read of PHI or a decision made through the API. Append-only. */
export interface NewAuditRecord {
  /** Who: API key / user id ('anonymous' when unauthenticated). Never PHI. */
  actor: string;
  /** What, e.g. 'message.read', 'patient.merge'. */
  action: string;
  /** On what kind of record, e.g. 'message', 'person'. */
  entityType: string;
  entityId: string;
  remoteAddress: string;
  at: Date;
  /** Extra machine-readable context (e.g. the before state of a merge). */
  details: Record<string, unknown> | null;
}

export interface AuditRecord extends NewAuditRecord {
  id: string;
}

export interface AuditSearch {
  entityType?: string;
  entityId?: string;
  actor?: string;
  action?: string;
  limit?: number;
  /** Opaque cursor returned by the previous page. */
  cursor?: string;
}

export interface AuditPage {
  /** Newest first (at desc, id desc). */
  items: AuditRecord[];
  nextCursor: string | null;
}
