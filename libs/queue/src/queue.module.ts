import { Global, Module } from '@nestjs/common';
import { DeliveryQueues } from './delivery-queues';
import { InboundQueues } from './inbound-queues';

/** Producer access to the inbound partition queues and the delivery queues. Needs EngineConfigModule. */
@Global()
@Module({
  providers: [InboundQueues, DeliveryQueues],
  exports: [InboundQueues, DeliveryQueues],
})
export class QueueModule {}
