import { Injectable } from '@nestjs/common';
import type { DataSource, Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { v7 as uuidv7 } from 'uuid';
import type { AuditPage, AuditRecord, AuditSearch, NewAuditRecord } from './audit.types';
import { dialectOf, type StoreDialect } from './dialect';
import { AuditEntity } from './entities/audit.entity';
import { clampLimit, decodeCursor, encodeCursor } from './paging';

/** The audit trail (`audit_log`): append and search. Records are never updated or deleted. */
@Injectable()
export class AuditRepository {
  private readonly dialect: StoreDialect;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectOf(dataSource);
  }

  private get repo(): Repository<AuditEntity> {
    return this.dataSource.getRepository(AuditEntity);
  }

  /** Appends one record and returns its id (UUIDv7). */
  async insert(record: NewAuditRecord): Promise<string> {
    const id = uuidv7();
    const row: AuditRecord = { ...record, id, details: record.details ?? null };
    // TypeORM's deep-partial type cannot express a JSON column of Record<string, unknown>.
    await this.repo.insert(row as QueryDeepPartialEntity<AuditEntity>);
    return id;
  }

  /** Newest first, keyset-paginated on (at, id); filters combine with AND. */
  async search(q: AuditSearch = {}): Promise<AuditPage> {
    const limit = clampLimit(q.limit);
    const qb = this.repo
      .createQueryBuilder('a')
      .orderBy('a.at', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .limit(limit + 1);
    for (const key of ['entityType', 'entityId', 'actor', 'action'] as const) {
      const value = q[key];
      if (value !== undefined) {
        qb.andWhere(`a.${key} = :${key}`, { [key]: value });
      }
    }
    if (q.cursor) {
      const c = decodeCursor(q.cursor, this.dialect === 'postgres');
      qb.andWhere('(a.at, a.id) < (:ksAt, :ksId)', { ksAt: c.at, ksId: c.id });
    }
    const found = await qb.getMany();
    const items: AuditRecord[] = found.slice(0, limit).map((a) => ({
      id: a.id,
      at: a.at,
      actor: a.actor,
      action: a.action,
      entityType: a.entityType,
      entityId: a.entityId,
      remoteAddress: a.remoteAddress,
      details: a.details,
    }));
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: found.length > limit && last ? encodeCursor(last.at, last.id) : null,
    };
  }
}
