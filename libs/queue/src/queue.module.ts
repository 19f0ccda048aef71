import { Global, Module } from '@nestjs/common';
import { InboundQueues } from './inbound-queues';

/** Producer access to the inbound partition queues. Needs EngineConfigModule. */
@Global()
@Module({ providers: [InboundQueues], exports: [InboundQueues] })
export class QueueModule {}
