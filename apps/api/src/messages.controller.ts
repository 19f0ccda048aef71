import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  Logger,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { parseMessage } from '@engine/hl7';
import { MESSAGE_STATUSES, type MessageStatus, MessageRepository, StoreError } from '@engine/store';
import { type InboundJobData, InboundQueues, inboundJobId } from '@engine/queue';
import { ApiKeyGuard, type AuthedRequest } from './auth.guard';
import { AuditService } from './audit.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Longest skip reason kept (it is stored in error_reason). */
const MAX_REASON_LENGTH = 500;

type MessageTransition = Awaited<ReturnType<MessageRepository['reprocess']>>;

interface MessageRowLike {
  id: string;
  feed: string;
  controlId: string;
  type: string;
  trigger: string;
  status: string;
  receivedAt: Date;
}

function summary(m: MessageRowLike) {
  return {
    id: m.id,
    feed: m.feed,
    controlId: m.controlId,
    type: m.trigger ? `${m.type}^${m.trigger}` : m.type,
    status: m.status,
    receivedAt: m.receivedAt.toISOString(),
  };
}

@ApiTags('messages')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('api/messages')
export class MessagesController {
  private readonly logger = new Logger(MessagesController.name);

  constructor(
    private readonly messages: MessageRepository,
    private readonly audit: AuditService,
    private readonly queues: InboundQueues,
  ) {}

  /** Search stored messages (rejected ones included), newest first. No PHI in the list. */
  @Get()
  @ApiQuery({ name: 'controlId', required: false })
  @ApiQuery({ name: 'feed', required: false })
  @ApiQuery({ name: 'status', required: false, enum: MESSAGE_STATUSES })
  @ApiQuery({ name: 'type', required: false, description: 'ADT or ADT^A01' })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'cursor', required: false })
  async search(
    @Query('controlId') controlId?: string,
    @Query('feed') feed?: string,
    @Query('status') status?: string,
    @Query('type') type?: string,
    @Query('limit') limit?: string,
    @Query('cursor') cursor?: string,
  ) {
    for (const [name, value] of Object.entries({ controlId, feed, status, type, limit, cursor })) {
      if (value !== undefined && typeof value !== 'string') {
        throw new BadRequestException(`${name} must be given once`);
      }
    }
    if (status !== undefined && !(MESSAGE_STATUSES as readonly string[]).includes(status)) {
      throw new BadRequestException(`status must be one of ${MESSAGE_STATUSES.join(', ')}`);
    }
    let n = 50;
    if (limit !== undefined) {
      n = Number(limit);
      if (!Number.isInteger(n) || n < 1 || n > 500) {
        throw new BadRequestException('limit must be an integer from 1 to 500');
      }
    }
    const [msgType, trigger] = (type ?? '').split('^');
    const page = await this.searchOr400({
      controlId: controlId || undefined,
      feed: feed || undefined,
      status: status as MessageStatus | undefined,
      type: msgType || undefined,
      trigger: trigger || undefined,
      limit: n,
      cursor: cursor || undefined,
    });
    return { items: page.items.map(summary), nextCursor: page.nextCursor ?? null };
  }

  private async searchOr400(q: Parameters<MessageRepository['search']>[0]) {
    try {
      return await this.messages.search(q);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'INVALID_CURSOR') {
        throw new BadRequestException('cursor is not one this API returned');
      }
      throw err;
    }
  }

  /** One message with its header and raw text (PHI: the read is audited). */
  @Get(':id')
  async get(@Param('id') id: string, @Req() req: AuthedRequest) {
    if (!UUID.test(id)) {
      throw new BadRequestException('id must be a message id (UUID)');
    }
    const m = await this.messages.findById(id);
    if (!m) {
      throw new NotFoundException(`message ${id} not found`);
    }
    await this.audit.record(req, 'message.read', 'message', id);
    let text: string;
    try {
      text = parseMessage(m.raw).toString();
    } catch {
      text = m.raw.toString('utf8');
    }
    return {
      ...summary(m),
      messageType: m.type,
      trigger: m.trigger,
      version: m.version,
      header: {
        sendingApplication: m.sendingApplication,
        sendingFacility: m.sendingFacility,
        receivingApplication: m.receivingApplication,
        receivingFacility: m.receivingFacility,
        controlId: m.controlId,
        version: m.version,
      },
      remoteAddress: m.remoteAddress,
      partition: m.partition,
      ackCode: m.ackCode,
      errorCode: m.errorCode,
      errorReason: m.errorReason,
      processedAt: m.processedAt ? m.processedAt.toISOString() : null,
      size: m.raw.length,
      raw: text,
      rawBase64: m.raw.toString('base64'),
    };
  }

  /**
   * Run a processed, error or ignored message through the pipeline again: status back to
   * `received` (error and held cleared) and a fresh inbound job. 409 for rejected messages (fix
   * and resend them instead) and for messages already waiting.
   */
  @Post(':id/reprocess')
  @HttpCode(202)
  @ApiResponse({ status: 202, description: '{ id, status: "received" }' })
  @ApiResponse({ status: 404, description: 'unknown message' })
  @ApiResponse({ status: 409, description: 'rejected, already received, or still running' })
  async reprocess(
    @Param('id') id: string,
    @Req() req: AuthedRequest,
  ): Promise<{ id: string; status: 'received' }> {
    const m = await this.findOr404(id);
    if (m.status === 'rejected' || m.status === 'received') {
      throw this.conflict(id, 'reprocess', m.status);
    }
    const item: InboundJobData = {
      messageId: m.id,
      feed: m.feed,
      partition: m.partition % this.queues.partitions,
    };
    // The job id is deterministic (<feed>-<id>) and adding an existing id is a no-op, so the
    // finished job of the earlier run (completed jobs are kept for a while, failed ones for
    // good) is removed first. A job still locked by a worker cannot be removed: 409.
    let removed: number;
    try {
      removed = await this.queues.queue(item.partition).remove(inboundJobId(m.feed, m.id));
    } catch (err) {
      this.logger.warn(`message ${id}: reprocess: queue unavailable: ${(err as Error).message}`);
      throw new ServiceUnavailableException('the inbound queue (Redis) is not reachable');
    }
    if (removed !== 1) {
      throw new ConflictException(`message ${id} is still being processed; try again shortly`);
    }
    const result = await this.messages.reprocess(id);
    this.orThrow(id, 'reprocess', result);
    try {
      await this.queues.enqueue([item]);
    } catch (err) {
      // The row is `received` and has no job: the sweeper re-enqueues it.
      this.logger.warn(
        `message ${id}: reprocess enqueue failed (${(err as Error).message}); the sweeper will re-enqueue it`,
      );
    }
    await this.audit.record(req, 'message.reprocess', 'message', id);
    return { id, status: 'received' };
  }

  /**
   * Give up on a message in `error`: it becomes `ignored` and releases its partition.
   * error_reason becomes `skipped: <reason>; error was: <previous reason>`. No PHI in reason.
   */
  @Post(':id/skip')
  @HttpCode(200)
  @ApiBody({
    schema: {
      type: 'object',
      required: ['reason'],
      properties: { reason: { type: 'string', maxLength: MAX_REASON_LENGTH } },
    },
  })
  @ApiResponse({ status: 200, description: '{ id, status: "ignored", errorCode, errorReason }' })
  @ApiResponse({ status: 404, description: 'unknown message' })
  @ApiResponse({ status: 409, description: 'the message is not in error' })
  async skip(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    const reason =
      body !== null && typeof body === 'object' && 'reason' in body ? body.reason : undefined;
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new BadRequestException('body must be JSON {"reason": "<why the message is skipped>"}');
    }
    if (reason.length > MAX_REASON_LENGTH) {
      throw new BadRequestException(`reason must be at most ${MAX_REASON_LENGTH} characters`);
    }
    const m = await this.findOr404(id);
    if (m.status !== 'error') {
      throw this.conflict(id, 'skip', m.status);
    }
    const result = await this.messages.skip(id, reason.replace(/\s+/g, ' ').trim());
    const message = this.orThrow(id, 'skip', result);
    await this.audit.record(req, 'message.skip', 'message', id);
    return {
      id,
      status: message.status,
      errorCode: message.errorCode,
      errorReason: message.errorReason,
    };
  }

  private async findOr404(id: string) {
    if (!UUID.test(id)) {
      throw new BadRequestException('id must be a message id (UUID)');
    }
    const m = await this.messages.findById(id);
    if (!m) {
      throw new NotFoundException(`message ${id} not found`);
    }
    return m;
  }

  private conflict(id: string, action: 'reprocess' | 'skip', status: MessageStatus) {
    const why =
      action === 'skip'
        ? 'only messages in error can be skipped'
        : status === 'rejected'
          ? 'rejected messages never entered the pipeline; fix and resend them'
          : 'it is already waiting to be processed';
    return new ConflictException(`message ${id} is ${status}: ${why}`);
  }

  private orThrow(id: string, action: 'reprocess' | 'skip', result: MessageTransition) {
    switch (result.outcome) {
      case 'done':
        return result.message;
      case 'not-found':
        throw new NotFoundException(`message ${id} not found`);
      case 'wrong-status':
        throw this.conflict(id, action, result.status);
    }
  }
}
