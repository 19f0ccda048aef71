import {
  BadRequestException,
  Controller,
  Get,
  NotFoundException,
  Param,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiQuery, ApiTags } from '@nestjs/swagger';
import { parseMessage } from '@engine/hl7';
import { MESSAGE_STATUSES, type MessageStatus, MessageRepository, StoreError } from '@engine/store';
import { ApiKeyGuard, type AuthedRequest } from './auth.guard';
import { AuditService } from './audit.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  constructor(
    private readonly messages: MessageRepository,
    private readonly audit: AuditService,
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
}
