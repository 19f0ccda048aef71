import { Module } from '@nestjs/common';
import { InboundProcessor } from './inbound.processor';

/** BullMQ processors. Needs EngineConfigModule and StoreModule from the app that imports it. */
@Module({ providers: [InboundProcessor], exports: [InboundProcessor] })
export class WorkerModule {}
