import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ENGINE_CONFIG, type EngineConfig } from '@engine/config';
import { DuplicateService, PatientReader } from '@engine/mpi';
import { DuplicatesController } from './duplicates.controller';
import { ApiKeyGuard } from './auth.guard';
import { AuditService } from './audit.service';
import { HealthController } from './health.controller';
import { MessagesController } from './messages.controller';
import { PatientsController } from './patients.controller';

/**
 * REST API: health, metrics, messages (search, view, reprocess, skip), patients (search, view,
 * unmerge), the duplicate worklist (list, view, decide).
 * Needs EngineConfigModule, StoreModule, QueueModule.
 */
@Module({
  controllers: [HealthController, MessagesController, PatientsController, DuplicatesController],
  providers: [
    ApiKeyGuard,
    AuditService,
    {
      provide: PatientReader,
      useFactory: (dataSource: DataSource) => new PatientReader(dataSource),
      inject: [DataSource],
    },
    {
      provide: DuplicateService,
      useFactory: (dataSource: DataSource, config: EngineConfig) =>
        new DuplicateService(dataSource, config.mpi.survivorship),
      inject: [DataSource, ENGINE_CONFIG],
    },
  ],
})
export class ApiModule {}
