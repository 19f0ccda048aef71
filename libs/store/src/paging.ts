/** Error with a machine-readable code (the API maps INVALID_CURSOR to 400). */
export class StoreError extends Error {
  constructor(
    readonly code: 'INVALID_CURSOR' | 'SQLITE_BUSY_TRANSACTION' | 'RESEND_GENERATION_CONFLICT',
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export const DEFAULT_SEARCH_LIMIT = 50;
export const MAX_SEARCH_LIMIT = 500;

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) {
    return DEFAULT_SEARCH_LIMIT;
  }
  return Math.min(MAX_SEARCH_LIMIT, Math.max(1, Math.floor(limit)));
}

/** Opaque keyset cursor: (time stamp, id) of the last row of a page. */
export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.getTime(), id])).toString('base64url');
}

/** Decodes a cursor; `uuidIds` also checks the id is a UUID (PostgreSQL would reject it). */
export function decodeCursor(cursor: string, uuidIds: boolean): { at: Date; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'number' &&
      Number.isFinite(value[0]) &&
      typeof value[1] === 'string' &&
      (!uuidIds || UUID_RE.test(value[1]))
    ) {
      return { at: new Date(value[0]), id: value[1] };
    }
  } catch {
    // fall through
  }
  throw new StoreError('INVALID_CURSOR', 'invalid cursor');
}
