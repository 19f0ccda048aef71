import { Injectable, Logger } from '@nestjs/common';
import { AuditRepository } from '@engine/store';
import type { AuthedRequest } from './auth.guard';

/** Writes an audit record for every read of PHI and every decision made through the API. */
@Injectable()
export class AuditService {
  private readonly logger = new Logger(AuditService.name);

  constructor(private readonly audits: AuditRepository) {}

  async record(
    req: AuthedRequest,
    action: string,
    entity: string,
    entityId: string,
    details: Record<string, unknown> | null = null,
  ): Promise<void> {
    await this.audits.insert({
      actor: req.principal?.id ?? 'anonymous',
      action,
      entityType: entity,
      entityId,
      remoteAddress: req.ip ?? '',
      at: new Date(),
      details,
    });
    this.logger.log(`${action} ${entity} ${entityId} by ${req.principal?.id ?? 'anonymous'}`);
  }
}
