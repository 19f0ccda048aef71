import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery.service';
import { InboundProcessor } from './inbound.processor';
import { PipelineService } from './pipeline.service';

/** The pipeline worker and the delivery worker. Needs EngineConfigModule, StoreModule and QueueModule from the app. */
@Module({
  providers: [PipelineService, InboundProcessor, DeliveryService],
  exports: [InboundProcessor, DeliveryService],
})
export class WorkerModule {}
