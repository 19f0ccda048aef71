import {
  Controller,
  Get,
  Header,
  HttpCode,
  Logger,
  ServiceUnavailableException,
} from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { register } from 'prom-client';
import { MessageRepository } from '@engine/store';
import { InboundQueues } from '@engine/queue';

const logger = new Logger('Health');

/** 'up' or 'down'; the reason goes to the log only (it may name hosts and users). */
async function check(name: string, fn: () => Promise<unknown>, timeoutMs = 2000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return 'up';
  } catch (err) {
    logger.warn(`${name} not ready: ${(err as Error).message}`);
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly messages: MessageRepository,
    private readonly queues: InboundQueues,
  ) {}

  /** The process is up. */
  @Get('health/live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** The database and Redis answer. 503 otherwise. */
  @Get('health/ready')
  @HttpCode(200)
  async ready(): Promise<{ status: string; database: string; redis: string }> {
    const [database, redis] = await Promise.all([
      check('database', () => this.messages.ping()),
      check('redis', () => this.queues.ping()),
    ]);
    const body = {
      status: database === 'up' && redis === 'up' ? 'ok' : 'unavailable',
      database,
      redis,
    };
    if (body.status !== 'ok') {
      throw new ServiceUnavailableException(body);
    }
    return body;
  }

  /** Prometheus metrics. */
  @Get('metrics')
  @Header('Content-Type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}
