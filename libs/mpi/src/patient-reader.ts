import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { dialectOf, type StoreDialect } from '@engine/store';
import type { GoldenRecord, Provenance } from './golden';
import type { Encounter, Identifier, OrderResult, PatientRecord } from './model';
import { maskSsn, normalizeName, tidyText } from './normalize';
import type { PersonStatus, RecordStatus } from './rows';

/** Every person status (mpi_person.status), for validation. */
export const PERSON_STATUSES: readonly PersonStatus[] = ['active', 'merged', 'deleted'];

export const DEFAULT_PATIENT_SEARCH_LIMIT = 50;
export const MAX_PATIENT_SEARCH_LIMIT = 200;

/** How many merge hops a search follows (a longer chain means a cycle or corrupt data). */
const MAX_MERGE_HOPS = 16;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Search criteria. At least one of `identifier`, `family` or `birthDate` is required; `given`
 * narrows a search and `authority` qualifies `identifier`.
 */
export interface PatientSearch {
  /** An identifier value (any record, retired ones included) or an MRN. */
  identifier?: string;
  /** Assigning authority of `identifier`. */
  authority?: string;
  /** Family name prefix, case-insensitive. */
  family?: string;
  /** Given name prefix, case-insensitive. */
  given?: string;
  /** Exact birth date: `YYYY-MM-DD` (also `YYYYMMDD`, `YYYY-MM`, `YYYY` for partial dates). */
  birthDate?: string;
  /** Person status to return (default 'active'); 'any' returns every status. */
  status?: PersonStatus | 'any';
  /** Page size, 1..200 (default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export type PatientReaderErrorCode = 'NO_CRITERIA' | 'INVALID_CRITERIA' | 'INVALID_CURSOR';

/** A search the reader refuses (the API maps every code to 400). The message carries no PHI. */
export class PatientReaderError extends Error {
  constructor(
    readonly code: PatientReaderErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PatientReaderError';
  }
}

/** An identifier as shown by the API (SSNs masked). */
export interface PatientIdentifierView {
  value: string;
  authority: string;
  type: string;
}

export interface PatientSummary {
  euid: string;
  /** Non-retired identifiers of the person's active source records (SSNs masked). */
  identifiers: PatientIdentifierView[];
  name: { family?: string; given?: string };
  birthDate?: string;
  sex?: string;
  status: PersonStatus;
}

export interface PatientPage {
  items: PatientSummary[];
  /** Present when there may be more: pass it as `cursor`. */
  nextCursor?: string;
}

export interface PersonRecordView {
  id: string;
  authority: string;
  mrn: string;
  status: RecordStatus;
  mergedInto: string | null;
  /** The record's patient data, SSN identifiers masked. */
  data: PatientRecord;
  updatedAt: string;
}

/**
 * An encounter of the person: the canonical `Encounter` fields, plus the row's `id`, visit
 * number (its key) and `status` from the row (the stored state, which also has
 * `entered-in-error` and `merged`; it wins over the status in the data).
 */
export type PersonEncounterView = Omit<Encounter, 'status'> & {
  id: string;
  visitNumber: string;
  status: string;
};

/**
 * A result (one order) of the person: the canonical `OrderResult` fields, plus the row's `id`,
 * order key and `status` from the row (OBR-25 as stored).
 */
export type PersonResultView = Omit<OrderResult, 'status'> & {
  id: string;
  orderKey: string;
  status: string;
};

export interface PersonView {
  euid: string;
  status: PersonStatus;
  mergedInto: string | null;
  /** The golden record, SSN masked. */
  golden: GoldenRecord;
  provenance: Provenance;
  /** Identifiers of the person's active source records (retired ones flagged), SSNs masked. */
  identifiers: Array<PatientIdentifierView & { retired: boolean }>;
  /** Every source record of the person, whatever its status, oldest first. */
  records: PersonRecordView[];
  /** Encounters owned by any of the records, oldest first. */
  encounters: PersonEncounterView[];
  /** Results owned by any of the records, oldest first. */
  results: PersonResultView[];
  createdAt: string;
  updatedAt: string;
}

interface PersonRow {
  euid: string;
  status: PersonStatus;
  merged_into: string | null;
  golden: unknown;
  provenance: unknown;
  sex: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

interface IdentifierRow {
  euid: string;
  record_id: string;
  record_authority: string;
  mrn: string;
  authority: string | null;
  value: string | null;
  type: string | null;
  retired: boolean | number | null;
}

interface RecordRow {
  id: string;
  authority: string;
  mrn: string;
  status: RecordStatus;
  merged_into: string | null;
  data: unknown;
  updated_at: Date | string;
}

interface OwnedRow {
  id: string;
  key: string;
  status: string;
  data: unknown;
}

/** Placeholders per dialect: `$1, $2, …` on PostgreSQL, `?` on SQLite (in text order). */
class Params {
  readonly values: unknown[] = [];

  constructor(private readonly dialect: StoreDialect) {}

  add(value: unknown): string {
    this.values.push(value);
    return this.dialect === 'postgres' ? `$${this.values.length}` : '?';
  }

  list(values: readonly unknown[]): string {
    return values.map((v) => this.add(v)).join(', ');
  }
}

/**
 * Read side of the master patient index for the API: patient search and the full view of one
 * person. Raw SQL over the mpi_* tables, on PostgreSQL and SQLite. Every value that leaves it
 * has SSNs masked; nothing here logs.
 */
@Injectable()
export class PatientReader {
  private readonly dialect: StoreDialect;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectOf(dataSource);
  }

  /**
   * Persons matching every given criterion, ordered by EUID (keyset paging). An identifier
   * matches any identifier of any source record (retired ones too) or a record's MRN; when it
   * lands on a merged record or person, the search follows `merged_into` to the survivor.
   */
  async search(q: PatientSearch): Promise<PatientPage> {
    const c = validatePatientSearch(q);
    const params = new Params(this.dialect);
    let sql = '';
    if (c.identifier !== undefined) {
      const byAuthority = (alias: string) =>
        c.authority !== undefined ? ` AND ${alias}."authority" = ${params.add(c.authority)}` : '';
      // rec: the records the identifier lands on, then the records they were merged into;
      // per: their persons, then the persons those were merged into.
      sql += `WITH RECURSIVE rec(id, depth) AS (
          SELECT s.id, 0 FROM (
            SELECT i."source_record_id" AS id FROM "mpi_identifier" i
            WHERE i."value" = ${params.add(c.identifier)}${byAuthority('i')}
            UNION
            SELECT r."id" AS id FROM "mpi_source_record" r
            WHERE r."mrn" = ${params.add(c.identifier)}${byAuthority('r')}
          ) s
          UNION
          SELECT r."merged_into", rec.depth + 1 FROM rec
          JOIN "mpi_source_record" r ON r."id" = rec.id
          WHERE r."status" = 'merged' AND r."merged_into" IS NOT NULL
            AND rec.depth < ${MAX_MERGE_HOPS}
        ),
        per(euid, depth) AS (
          SELECT r."person_euid", 0 FROM rec JOIN "mpi_source_record" r ON r."id" = rec.id
          UNION
          SELECT p."merged_into", per.depth + 1 FROM per
          JOIN "mpi_person" p ON p."euid" = per.euid
          WHERE p."status" = 'merged' AND p."merged_into" IS NOT NULL
            AND per.depth < ${MAX_MERGE_HOPS}
        )
        `;
    }
    const where: string[] = [];
    if (c.status !== 'any') {
      where.push(`p."status" = ${params.add(c.status)}`);
    }
    if (c.identifier !== undefined) {
      where.push(`p."euid" IN (SELECT euid FROM per)`);
    }
    if (c.family !== undefined) {
      where.push(`p."family_name" LIKE ${params.add(likePrefix(c.family))} ESCAPE '\\'`);
    }
    if (c.given !== undefined) {
      where.push(`p."given_name" LIKE ${params.add(likePrefix(c.given))} ESCAPE '\\'`);
    }
    if (c.birthDate !== undefined) {
      where.push(`p."birth_date" = ${params.add(c.birthDate)}`);
    }
    if (c.after !== undefined) {
      where.push(`p."euid" > ${params.add(c.after)}`);
    }
    sql += `SELECT p."euid", p."status", p."golden", p."sex"
      FROM "mpi_person" p
      WHERE ${where.length > 0 ? where.join(' AND ') : '1 = 1'}
      ORDER BY p."euid"
      LIMIT ${params.add(c.limit + 1)}`;
    const rows = await this.dataSource.query<
      Array<Pick<PersonRow, 'euid' | 'status' | 'golden' | 'sex'>>
    >(sql, params.values);
    const page = rows.slice(0, c.limit);
    const identifiers = await this.identifiersOf(
      page.map((r) => r.euid),
      false,
    );
    const items = page.map((r): PatientSummary => {
      const golden = parseJson<GoldenRecord>(r.golden) ?? {};
      return {
        euid: r.euid,
        identifiers: (identifiers.get(r.euid) ?? []).map(({ value, authority, type }) => ({
          value,
          authority,
          type,
        })),
        name: { family: golden.name?.family, given: golden.name?.given },
        birthDate: golden.birthDate?.value,
        sex: golden.sex ?? (r.sex || undefined),
        status: r.status,
      };
    });
    const last = page[page.length - 1];
    return rows.length > c.limit && last
      ? { items, nextCursor: encodePatientCursor(last.euid) }
      : { items };
  }

  /** The person with all its source records, encounters and results; null when unknown. */
  async getPerson(euid: string): Promise<PersonView | null> {
    if (!UUID_RE.test(euid)) {
      return null;
    }
    const id = euid.toLowerCase();
    const params = new Params(this.dialect);
    const [person] = await this.dataSource.query<PersonRow[]>(
      `SELECT "euid", "status", "merged_into", "golden", "provenance", "sex", "created_at",
        "updated_at"
      FROM "mpi_person" WHERE "euid" = ${params.add(id)}`,
      params.values,
    );
    if (!person) {
      return null;
    }
    const recParams = new Params(this.dialect);
    const recordRows = await this.dataSource.query<RecordRow[]>(
      `SELECT "id", "authority", "mrn", "status", "merged_into", "data", "updated_at"
      FROM "mpi_source_record" WHERE "person_euid" = ${recParams.add(id)}
      ORDER BY "created_at", "id"`,
      recParams.values,
    );
    const recordIds = recordRows.map((r) => r.id);
    const [identifiers, encounterRows, resultRows] = await Promise.all([
      this.identifiersOf([person.euid], true),
      this.owned('mpi_encounter', 'visit_key', recordIds),
      this.owned('mpi_result', 'order_key', recordIds),
    ]);
    const golden = parseJson<GoldenRecord>(person.golden) ?? {};
    return {
      euid: person.euid,
      status: person.status,
      mergedInto: person.merged_into,
      golden: maskGolden(golden),
      provenance: parseJson<Provenance>(person.provenance) ?? {},
      identifiers: identifiers.get(person.euid) ?? [],
      records: recordRows.map((r) => ({
        id: r.id,
        authority: r.authority,
        mrn: r.mrn,
        status: r.status,
        mergedInto: r.merged_into,
        data: maskRecord(parseJson<PatientRecord>(r.data)),
        updatedAt: toIso(r.updated_at),
      })),
      encounters: encounterRows.map((r) => {
        const { status: _dataStatus, ...data } = parseJson<Encounter>(r.data) ?? {};
        return { ...data, id: r.id, visitNumber: r.key, status: r.status };
      }),
      results: resultRows.map((r) => {
        const { status: _dataStatus, ...data } = parseJson<OrderResult>(r.data) ?? {
          notes: [],
          observations: [],
        };
        return { ...data, id: r.id, orderKey: r.key, status: r.status };
      }),
      createdAt: toIso(person.created_at),
      updatedAt: toIso(person.updated_at),
    };
  }

  /**
   * Identifiers of the active source records of each person (SSNs masked), deduplicated, in
   * record age order; a record's MRN is included when no identifier row carries it.
   */
  private async identifiersOf(
    euids: readonly string[],
    withRetired: boolean,
  ): Promise<Map<string, Array<PatientIdentifierView & { retired: boolean }>>> {
    const out = new Map<string, Array<PatientIdentifierView & { retired: boolean }>>();
    if (euids.length === 0) {
      return out;
    }
    const params = new Params(this.dialect);
    const rows = await this.dataSource.query<IdentifierRow[]>(
      `SELECT r."person_euid" AS euid, r."id" AS record_id, r."authority" AS record_authority,
        r."mrn" AS mrn, i."authority" AS authority, i."value" AS value, i."type" AS type,
        i."retired" AS retired
      FROM "mpi_source_record" r
      LEFT JOIN "mpi_identifier" i ON i."source_record_id" = r."id"${withRetired ? '' : ' AND NOT i."retired"'}
      WHERE r."person_euid" IN (${params.list(euids)}) AND r."status" = 'active'
      ORDER BY r."created_at", r."id", i."retired", i."authority", i."type", i."value"`,
      params.values,
    );
    const seen = new Set<string>();
    const mrnSeen = new Map<string, boolean>();
    const add = (euid: string, id: PatientIdentifierView & { retired: boolean }) => {
      const key = `${euid}\u0000${id.authority}\u0000${id.type}\u0000${id.value}`;
      if (seen.has(key)) {
        return;
      }
      seen.add(key);
      let list = out.get(euid);
      if (!list) {
        list = [];
        out.set(euid, list);
      }
      list.push({ ...id, value: id.type === 'SS' ? (maskSsn(id.value) ?? '') : id.value });
    };
    for (const r of rows) {
      if (!mrnSeen.has(r.record_id)) {
        mrnSeen.set(r.record_id, false);
      }
      if (r.value === null) {
        continue;
      }
      if (r.value === r.mrn && r.authority === r.record_authority) {
        mrnSeen.set(r.record_id, true);
      }
      add(r.euid, {
        value: r.value,
        authority: r.authority ?? '',
        type: r.type ?? '',
        retired: Boolean(r.retired),
      });
    }
    // Records whose MRN has no identifier row (older writers): show the MRN itself.
    for (const r of rows) {
      if (mrnSeen.get(r.record_id) === false && r.mrn !== '') {
        mrnSeen.set(r.record_id, true);
        add(r.euid, { value: r.mrn, authority: r.record_authority, type: 'MR', retired: false });
      }
    }
    return out;
  }

  private async owned(
    table: 'mpi_encounter' | 'mpi_result',
    keyColumn: 'visit_key' | 'order_key',
    recordIds: readonly string[],
  ): Promise<OwnedRow[]> {
    if (recordIds.length === 0) {
      return [];
    }
    const params = new Params(this.dialect);
    return this.dataSource.query<OwnedRow[]>(
      `SELECT "id", "${keyColumn}" AS key, "status", "data" FROM "${table}"
      WHERE "source_record_id" IN (${params.list(recordIds)})
      ORDER BY "created_at", "id"`,
      params.values,
    );
  }
}

// ---- criteria --------------------------------------------------------------------------------

interface ValidSearch {
  identifier?: string;
  authority?: string;
  family?: string;
  given?: string;
  birthDate?: string;
  status: PersonStatus | 'any';
  limit: number;
  after?: string;
}

/** Checks and normalizes criteria; throws PatientReaderError (messages name fields, not values). */
export function validatePatientSearch(q: PatientSearch): ValidSearch {
  const identifier = tidyText(q.identifier);
  const authority = tidyText(q.authority);
  const family = normalizeName(q.family);
  const given = normalizeName(q.given);
  let birthDate: string | undefined;
  if (q.birthDate !== undefined && q.birthDate.trim() !== '') {
    birthDate = normalizeBirthDate(q.birthDate);
    if (birthDate === undefined) {
      throw new PatientReaderError(
        'INVALID_CRITERIA',
        'birthDate must be a date as YYYY-MM-DD (or YYYYMMDD, YYYY-MM, YYYY)',
      );
    }
  }
  if (authority !== undefined && identifier === undefined) {
    throw new PatientReaderError('INVALID_CRITERIA', 'authority needs identifier');
  }
  if (identifier === undefined && family === undefined && birthDate === undefined) {
    throw new PatientReaderError(
      'NO_CRITERIA',
      given !== undefined
        ? 'given needs family, birthDate or identifier'
        : 'give at least one of identifier, family (name) or birthDate (dob)',
    );
  }
  const status = q.status ?? 'active';
  if (status !== 'any' && !PERSON_STATUSES.includes(status)) {
    throw new PatientReaderError(
      'INVALID_CRITERIA',
      `status must be one of ${PERSON_STATUSES.join(', ')}, any`,
    );
  }
  let limit = DEFAULT_PATIENT_SEARCH_LIMIT;
  if (q.limit !== undefined) {
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_PATIENT_SEARCH_LIMIT) {
      throw new PatientReaderError(
        'INVALID_CRITERIA',
        `limit must be an integer from 1 to ${MAX_PATIENT_SEARCH_LIMIT}`,
      );
    }
    limit = q.limit;
  }
  const after = q.cursor ? decodeCursor(q.cursor) : undefined;
  return { identifier, authority, family, given, birthDate, status, limit, after };
}

/** ISO date at year, month or day precision (YYYYMMDD accepted); invalid → undefined. */
function normalizeBirthDate(value: string): string | undefined {
  const m = /^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?$/.exec(value.trim());
  if (!m) {
    return undefined;
  }
  const [, y, mo, d] = m;
  // Mixed forms (1962-0305) are not dates.
  const t = value.trim();
  if (d !== undefined && t.length !== 8 && t.length !== 10) {
    return undefined;
  }
  if (mo !== undefined && (Number(mo) < 1 || Number(mo) > 12)) {
    return undefined;
  }
  if (d !== undefined) {
    const days = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
    if (Number(d) < 1 || Number(d) > days) {
      return undefined;
    }
  }
  return [y, mo, d].filter((p) => p !== undefined).join('-');
}

function likePrefix(value: string): string {
  return `${value.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/** Opaque cursor: base64url of the last EUID of the page. */
export function encodePatientCursor(euid: string): string {
  return Buffer.from(euid, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const euid = /^[A-Za-z0-9_-]+$/.test(cursor)
    ? Buffer.from(cursor, 'base64url').toString('utf8')
    : '';
  if (!UUID_RE.test(euid)) {
    throw new PatientReaderError('INVALID_CURSOR', 'cursor is not one this API returned');
  }
  return euid.toLowerCase();
}

// ---- values ----------------------------------------------------------------------------------

/** JSON columns: objects on PostgreSQL, text on SQLite. */
function parseJson<T>(value: unknown): T | undefined {
  if (value == null) {
    return undefined;
  }
  if (typeof value === 'string') {
    return JSON.parse(value) as T;
  }
  return value as T;
}

/** timestamptz → Date (PostgreSQL); 'YYYY-MM-DD HH:MM:SS.SSS' UTC text (SQLite). */
function toIso(value: Date | string): string {
  if (value instanceof Date) {
    return value.toISOString();
  }
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

function maskGolden(golden: GoldenRecord): GoldenRecord {
  if (golden.ssn === undefined) {
    return golden;
  }
  return { ...golden, ssn: maskSsn(golden.ssn) };
}

function maskIdentifier(id: Identifier): Identifier {
  return id.type === 'SS' ? { ...id, value: maskSsn(id.value) ?? '' } : id;
}

function maskRecord(data: PatientRecord | undefined): PatientRecord {
  if (!data) {
    return { authority: '', identifiers: [], names: null, addresses: null, telecom: null };
  }
  return { ...data, identifiers: (data.identifiers ?? []).map(maskIdentifier) };
}
