import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ENGINE_CONFIG, type EngineConfig } from '@engine/config';
import { DeliveryQueues } from '@engine/queue';
import {
  type Delivery,
  DELIVERY_STATUSES,
  type DeliveryStatus,
  DeliveryStore,
} from '@engine/store';
import { actorOf, optionalString, UUID } from './duplicates.controller';
import { ApiKeyGuard, type AuthedRequest } from './auth.guard';
import { AuditService } from './audit.service';

const DELIVERY_ID = /^\d{1,18}$/;
/** Most ids one replay request may name. */
const MAX_REPLAY_IDS = 10_000;

/** A delivery without its payload (lists never carry PHI). */
function summary(d: Delivery) {
  return {
    id: d.id,
    destination: d.destination,
    route: d.route,
    kind: d.kind,
    messageId: d.messageId,
    eventType: d.eventType,
    euid: d.euid,
    status: d.status,
    attempts: d.attempts,
    redeliveries: d.redeliveries,
    lastError: d.lastError,
    remoteAck: d.remoteAck,
    latencyMs: d.latencyMs,
    createdAt: d.createdAt.toISOString(),
    nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    updatedAt: d.updatedAt.toISOString(),
  };
}

/**
 * Deliveries to downstream systems and their control: the dead-letter list, replay of one, many
 * or all, pause and resume of a destination, and per-destination counts and lag.
 */
@ApiTags('deliveries')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('api')
export class DeliveriesController {
  constructor(
    private readonly store: DeliveryStore,
    private readonly queues: DeliveryQueues,
    private readonly audit: AuditService,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
  ) {}

  private destination(id: string) {
    const d = this.config.destinations.find((x) => x.id === id);
    if (!d) {
      throw new NotFoundException(`no destination "${id}"`);
    }
    return d;
  }

  @Get('deliveries')
  @ApiQuery({ name: 'destination', required: false })
  @ApiQuery({ name: 'status', required: false, enum: DELIVERY_STATUSES })
  @ApiQuery({ name: 'messageId', required: false })
  @ApiQuery({ name: 'limit', required: false, description: '1..500 (default 50)' })
  @ApiQuery({ name: 'cursor', required: false })
  async list(@Query() query: Record<string, unknown>) {
    const status = optionalString(query.status, 'status');
    if (status !== undefined && !DELIVERY_STATUSES.includes(status as DeliveryStatus)) {
      throw new BadRequestException(`status must be one of ${DELIVERY_STATUSES.join(', ')}`);
    }
    const messageId = optionalString(query.messageId, 'messageId');
    if (messageId !== undefined && !UUID.test(messageId)) {
      throw new BadRequestException('messageId must be a UUID');
    }
    const cursor = optionalString(query.cursor, 'cursor');
    if (cursor !== undefined && !DELIVERY_ID.test(cursor)) {
      throw new BadRequestException('invalid cursor');
    }
    const limitText = optionalString(query.limit, 'limit');
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 500)) {
      throw new BadRequestException('limit must be an integer from 1 to 500');
    }
    const destination = optionalString(query.destination, 'destination');
    if (destination !== undefined) {
      this.destination(destination);
    }
    const page = await this.store.search({
      destination,
      status: status as DeliveryStatus | undefined,
      messageId,
      limit,
      cursor,
    });
    return { items: page.items.map(summary), nextCursor: page.nextCursor };
  }

  /** One delivery with its event payload (PHI: the read is audited). */
  @Get('deliveries/:id')
  async get(@Param('id') id: string, @Req() req: AuthedRequest) {
    if (!DELIVERY_ID.test(id)) {
      throw new BadRequestException('id must be a delivery id (digits)');
    }
    const d = await this.store.get(id);
    if (!d) {
      throw new NotFoundException('no such delivery');
    }
    await this.audit.record(req, 'delivery.read', 'delivery', id);
    return { ...summary(d), eventKey: d.eventKey, lane: d.lane, payload: d.payload };
  }

  /**
   * Replay one delivery: a dead-lettered (or skipped) one goes out again; a delivered one only
   * with `?force=true` (it is then delivered a second time, on purpose).
   */
  @Post('deliveries/:id/replay')
  @HttpCode(200)
  @ApiQuery({ name: 'force', required: false, description: 'true: replay a delivered one too' })
  async replayOne(
    @Param('id') id: string,
    @Query('force') force: string | undefined,
    @Req() req: AuthedRequest,
  ) {
    if (!DELIVERY_ID.test(id)) {
      throw new BadRequestException('id must be a delivery id (digits)');
    }
    const before = await this.store.get(id);
    if (!before) {
      throw new NotFoundException('no such delivery');
    }
    if (before.status === 'pending') {
      throw new BadRequestException('the delivery is pending: it goes out without a replay');
    }
    if (before.status === 'delivered' && force !== 'true') {
      throw new BadRequestException(
        'the delivery was delivered; replay it again only with ?force=true',
      );
    }
    const result = await this.store.replay([id], { force: force === 'true' });
    await this.queues.wake(result.lanes);
    await this.audit.record(req, 'delivery.replay', 'delivery', id, {
      actor: actorOf(req),
      before: before.status,
    });
    return summary((await this.store.get(id))!);
  }

  /**
   * Replay many: `{"ids": [...]}`, or every dead-lettered delivery (`{"status": "dead"}`, of
   * one destination with `"destination"`).
   */
  @Post('deliveries/replay')
  @HttpCode(200)
  @ApiBody({
    schema: {
      type: 'object',
      properties: {
        ids: { type: 'array', items: { type: 'string' } },
        status: { type: 'string', enum: ['dead'] },
        destination: { type: 'string' },
        force: { type: 'boolean' },
      },
    },
  })
  async replayMany(@Body() body: unknown, @Req() req: AuthedRequest) {
    const b = (body ?? {}) as Record<string, unknown>;
    let result;
    if (b.ids !== undefined) {
      if (
        !Array.isArray(b.ids) ||
        b.ids.length === 0 ||
        b.ids.length > MAX_REPLAY_IDS ||
        !b.ids.every((x) => typeof x === 'string' && DELIVERY_ID.test(x))
      ) {
        throw new BadRequestException(
          `ids must be a list of 1 to ${MAX_REPLAY_IDS} delivery ids (digit strings)`,
        );
      }
      result = await this.store.replay(b.ids as string[], { force: b.force === true });
    } else if (b.status === 'dead') {
      if (b.destination !== undefined) {
        if (typeof b.destination !== 'string') {
          throw new BadRequestException('destination must be a destination id');
        }
        this.destination(b.destination);
      }
      result = await this.store.replayDead(b.destination);
    } else {
      throw new BadRequestException('give "ids", or "status": "dead" (and maybe "destination")');
    }
    await this.queues.wake(result.lanes);
    await this.audit.record(req, 'delivery.replay', 'delivery', 'many', {
      actor: actorOf(req),
      count: result.replayed.length,
      destination: b.destination ?? null,
    });
    return { replayed: result.replayed.length, ids: result.replayed };
  }

  /** Every configured destination with its counts by status, lag and pause state. */
  @Get('destinations')
  async destinations() {
    const [counts, states] = await Promise.all([
      this.store.counts(),
      this.store.destinationStates(),
    ]);
    const items = await Promise.all(
      this.config.destinations.map(async (d) => {
        const c = counts.get(d.id) ?? {
          pending: 0,
          delivered: 0,
          dead: 0,
          skipped: 0,
          lagMs: 0,
          retrying: 0,
        };
        const state = states.get(d.id);
        return {
          id: d.id,
          type: d.type,
          format: d.format,
          ordering: d.ordering,
          paused: await this.queues.isPaused(d.id),
          pausedBy: state?.paused ? state.changedBy : null,
          pauseReason: state?.paused ? state.reason : null,
          counts: {
            pending: c.pending,
            retrying: c.retrying,
            delivered: c.delivered,
            dead: c.dead,
            skipped: c.skipped,
          },
          lagSeconds: Math.round(c.lagMs / 100) / 10,
        };
      }),
    );
    return { items };
  }

  /** Pause a destination: its deliveries wait (and keep their order) until it is resumed. */
  @Post('destinations/:id/pause')
  @HttpCode(200)
  @ApiBody({ schema: { type: 'object', properties: { reason: { type: 'string' } } } })
  async pause(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.setPaused(id, true, body, req);
  }

  @Post('destinations/:id/resume')
  @HttpCode(200)
  async resume(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.setPaused(id, false, body, req);
  }

  private async setPaused(id: string, paused: boolean, body: unknown, req: AuthedRequest) {
    this.destination(id);
    const reasonRaw = ((body ?? {}) as Record<string, unknown>).reason;
    if (reasonRaw !== undefined && typeof reasonRaw !== 'string') {
      throw new BadRequestException('reason must be a string');
    }
    const reason = (reasonRaw ?? '').slice(0, 500);
    await this.store.setPaused(id, paused, actorOf(req), reason);
    await (paused ? this.queues.pause(id) : this.queues.resume(id));
    if (!paused) {
      // Lanes that filled up meanwhile: the sweeper would find them; waking now is quicker.
      const lanes = (await this.store.pendingLanes()).filter((l) => l.destination === id);
      await this.queues.wake(lanes);
    }
    await this.audit.record(
      req,
      paused ? 'destination.pause' : 'destination.resume',
      'destination',
      id,
      {
        actor: actorOf(req),
        reason,
      },
    );
    return { id, paused };
  }
}
