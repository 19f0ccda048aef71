import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './auth.guard';
import { AuditService } from './audit.service';
import { HealthController } from './health.controller';
import { MessagesController } from './messages.controller';

/** REST API: health, metrics, messages. Needs EngineConfigModule, StoreModule, QueueModule. */
@Module({
  controllers: [HealthController, MessagesController],
  providers: [ApiKeyGuard, AuditService],
})
export class ApiModule {}
