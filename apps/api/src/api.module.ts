import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ENGINE_CONFIG, type EngineConfig } from '@engine/config';
import { DuplicateService, PatientReader } from '@engine/mpi';
import { DeliveryQueues } from '@engine/queue';
import { Router } from '@engine/routing';
import { DeliveryStore } from '@engine/store';
import { DeliveriesController } from './deliveries.controller';
import { DuplicatesController } from './duplicates.controller';
import { ApiKeyGuard } from './auth.guard';
import { AuditService } from './audit.service';
import { HealthController } from './health.controller';
import { MessagesController } from './messages.controller';
import { PatientsController } from './patients.controller';

/**
 * REST API: health, metrics, messages (search, view, reprocess, skip), patients (search, view,
 * unmerge), the duplicate worklist (list, view, decide), deliveries and destinations (dead
 * letters, replay, pause/resume, counts and lag).
 * Needs EngineConfigModule, StoreModule, QueueModule.
 */
@Module({
  controllers: [
    HealthController,
    MessagesController,
    PatientsController,
    DuplicatesController,
    DeliveriesController,
  ],
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
      // Decisions route their events (merge → A40 / patient.merged) like the pipeline does.
      useFactory: (dataSource: DataSource, config: EngineConfig, queues: DeliveryQueues) => {
        const router = new Router(config);
        return new DuplicateService(dataSource, config.mpi.survivorship, {
          router: router.active ? router : undefined,
          onDeliveries: (lanes) => queues.wakeSoon(lanes),
        });
      },
      inject: [DataSource, ENGINE_CONFIG, DeliveryQueues],
    },
    {
      provide: DeliveryStore,
      useFactory: (dataSource: DataSource) => new DeliveryStore(dataSource),
      inject: [DataSource],
    },
  ],
})
export class ApiModule {}
