import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  DUPLICATE_STATUSES,
  DuplicateCursorError,
  DuplicateService,
  type DuplicateTask,
  type DuplicateTaskStatus,
  OperationError,
  PatientReader,
} from '@engine/mpi';
import { ApiKeyGuard, type AuthedRequest } from './auth.guard';
import { AuditService } from './audit.service';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACTIONS = ['merge', 'link', 'not-duplicate', 'defer'] as const;
type Action = (typeof ACTIONS)[number];

/**
 * The acting person: the API key's principal, plus the `X-Acting-User` header when the client
 * (the console) names the medical records technician who decided.
 */
export function actorOf(req: AuthedRequest): string {
  const base = req.principal?.id ?? 'anonymous';
  const header = req.headers['x-acting-user'];
  const user = typeof header === 'string' ? header.trim().slice(0, 100) : '';
  return user && /^[\w.@-]+$/.test(user) ? `${base}/${user}` : base;
}

/** A query parameter given at most once ('' counts as absent); 400 when repeated. */
export function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === '') {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new BadRequestException(`${name} must be given once`);
  }
  return value;
}

function date(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) {
    return undefined;
  }
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw new BadRequestException(`${name} must be an ISO date (YYYY-MM-DD or a date-time)`);
  }
  return d;
}

function httpError(err: unknown): never {
  if (err instanceof OperationError) {
    if (err.code === 'not-found') {
      throw new NotFoundException(err.message);
    }
    if (err.code === 'invalid') {
      throw new BadRequestException(err.message);
    }
    throw new ConflictException(err.message);
  }
  throw err;
}

/**
 * The potential-duplicate worklist: pairs of records whose match score fell in the review band,
 * for medical records technicians to compare and decide. Every read is audited (the detail
 * shows PHI) and every decision is audited with who, when, why and the before state.
 */
@ApiTags('duplicates')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('api')
export class DuplicatesController {
  constructor(
    private readonly duplicates: DuplicateService,
    private readonly patients: PatientReader,
    private readonly audit: AuditService,
  ) {}

  @Get('duplicates')
  @ApiQuery({ name: 'status', required: false, enum: DUPLICATE_STATUSES })
  @ApiQuery({ name: 'facility', required: false, description: 'assigning authority' })
  @ApiQuery({ name: 'from', required: false, description: 'created at or after (ISO date)' })
  @ApiQuery({ name: 'to', required: false, description: 'created before (ISO date)' })
  @ApiQuery({ name: 'limit', required: false, description: '1..200 (default 50)' })
  @ApiQuery({ name: 'cursor', required: false })
  async list(@Query() query: Record<string, unknown>, @Req() req: AuthedRequest) {
    const status = optionalString(query.status, 'status');
    if (status !== undefined && !DUPLICATE_STATUSES.includes(status as DuplicateTaskStatus)) {
      throw new BadRequestException(`status must be one of ${DUPLICATE_STATUSES.join(', ')}`);
    }
    const limitText = optionalString(query.limit, 'limit');
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 200)) {
      throw new BadRequestException('limit must be an integer from 1 to 200');
    }
    let page;
    try {
      page = await this.duplicates.search({
        status: status as DuplicateTaskStatus | undefined,
        facility: optionalString(query.facility, 'facility'),
        from: date(optionalString(query.from, 'from'), 'from'),
        to: date(optionalString(query.to, 'to'), 'to'),
        limit,
        cursor: optionalString(query.cursor, 'cursor'),
      });
    } catch (err) {
      if (err instanceof DuplicateCursorError) {
        throw new BadRequestException('invalid cursor');
      }
      throw err;
    }
    const ids = await this.duplicates.identifiersOf([
      ...new Set(page.items.flatMap((t) => [t.leftEuid, t.rightEuid])),
    ]);
    await this.audit.record(req, 'duplicate.search', 'duplicate', status ?? 'any');
    return {
      items: page.items.map((t) => ({
        ...summary(t),
        left: { euid: t.leftEuid, identifiers: ids.get(t.leftEuid) ?? [] },
        right: { euid: t.rightEuid, identifiers: ids.get(t.rightEuid) ?? [] },
      })),
      total: page.total,
      nextCursor: page.nextCursor,
    };
  }

  /** Both persons side by side, with the field-by-field breakdown of the score. */
  @Get('duplicates/:id')
  async get(@Param('id') id: string, @Req() req: AuthedRequest) {
    if (!UUID.test(id)) {
      throw new BadRequestException('id must be a UUID');
    }
    const task = await this.duplicates.get(id);
    if (!task) {
      throw new NotFoundException('no such duplicate task');
    }
    const [left, right] = await Promise.all([
      this.patients.getPerson(task.leftEuid),
      this.patients.getPerson(task.rightEuid),
    ]);
    await this.audit.record(req, 'duplicate.read', 'duplicate', id);
    return {
      ...summary(task),
      breakdown: task.breakdown,
      leftRecordId: task.leftRecordId,
      rightRecordId: task.rightRecordId,
      left,
      right,
    };
  }

  /**
   * Decide a task: `merge` (the other person's records join the survivor), `link` (the
   * compared record joins the survivor's person), `not-duplicate` (never proposed again) or
   * `defer`. A reason is required.
   */
  @Post('duplicates/:id/decision')
  @HttpCode(200)
  @ApiHeader({ name: 'X-Acting-User', required: false, description: 'who decided (recorded)' })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['action', 'reason'],
      properties: {
        action: { type: 'string', enum: [...ACTIONS] },
        survivor: { type: 'string', description: 'EUID that survives (merge, link)' },
        reason: { type: 'string' },
      },
    },
  })
  async decide(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    if (!UUID.test(id)) {
      throw new BadRequestException('id must be a UUID');
    }
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.action !== 'string' || !ACTIONS.includes(b.action as Action)) {
      throw new BadRequestException(`action must be one of ${ACTIONS.join(', ')}`);
    }
    if (typeof b.reason !== 'string' || b.reason.trim() === '') {
      throw new BadRequestException('reason is required');
    }
    if (b.survivor !== undefined && (typeof b.survivor !== 'string' || !UUID.test(b.survivor))) {
      throw new BadRequestException('survivor must be an EUID');
    }
    const before = await this.duplicates.get(id);
    if (!before) {
      throw new NotFoundException('no such duplicate task');
    }
    const actor = actorOf(req);
    let task: DuplicateTask;
    try {
      task = await this.duplicates.decide(id, b.action as Action, {
        survivor: b.survivor,
        reason: b.reason.trim().slice(0, 2000),
        actor,
      });
    } catch (err) {
      httpError(err);
    }
    await this.audit.record(req, 'duplicate.decision', 'duplicate', id, {
      actor,
      action: b.action,
      survivor: b.survivor ?? null,
      reason: b.reason,
      before: {
        status: before.status,
        leftEuid: before.leftEuid,
        rightEuid: before.rightEuid,
        leftRecordId: before.leftRecordId,
        rightRecordId: before.rightRecordId,
      },
    });
    return { ...summary(task), decidedBy: task.decidedBy, decisionReason: task.decisionReason };
  }

  /** Undo the latest merge or link into this person: every record goes back where it was. */
  @Post('patients/:euid/unmerge')
  @HttpCode(200)
  @ApiHeader({ name: 'X-Acting-User', required: false, description: 'who decided (recorded)' })
  @ApiBody({
    schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } },
  })
  async unmerge(@Param('euid') euid: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    if (!UUID.test(euid)) {
      throw new BadRequestException('euid must be a UUID');
    }
    const reason = (body as { reason?: unknown } | undefined)?.reason;
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new BadRequestException('reason is required');
    }
    const actor = actorOf(req);
    try {
      const undone = await this.duplicates.unmerge(euid, { reason: reason.trim(), actor });
      await this.audit.record(req, 'patient.unmerge', 'person', euid, {
        actor,
        reason,
        undone: undone.id,
        kind: undone.kind,
        before: undone.before,
      });
      return {
        euid,
        undone: { id: undone.id, kind: undone.kind, restoredEuid: undone.subjectEuid },
      };
    } catch (err) {
      httpError(err);
    }
  }
}

function summary(t: DuplicateTask) {
  return {
    id: t.id,
    score: t.score,
    status: t.status,
    facility: t.facility,
    createdAt: t.createdAt.toISOString(),
    decidedAt: t.decidedAt?.toISOString() ?? null,
  };
}
