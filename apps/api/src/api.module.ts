import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PatientReader } from '@engine/mpi';
import { ApiKeyGuard } from './auth.guard';
import { AuditService } from './audit.service';
import { HealthController } from './health.controller';
import { MessagesController } from './messages.controller';
import { PatientsController } from './patients.controller';

/**
 * REST API: health, metrics, messages (search, view, reprocess, skip), patients (search, view).
 * Needs EngineConfigModule, StoreModule, QueueModule.
 */
@Module({
  controllers: [HealthController, MessagesController, PatientsController],
  providers: [
    ApiKeyGuard,
    AuditService,
    {
      provide: PatientReader,
      useFactory: (dataSource: DataSource) => new PatientReader(dataSource),
      inject: [DataSource],
    },
  ],
})
export class ApiModule {}
