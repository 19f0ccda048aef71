import { Module } from '@nestjs/common';
import { InboundProcessor } from './inbound.processor';
import { PipelineService } from './pipeline.service';

/** The pipeline worker. Needs EngineConfigModule, StoreModule and QueueModule from the app. */
@Module({ providers: [PipelineService, InboundProcessor], exports: [InboundProcessor] })
export class WorkerModule {}
