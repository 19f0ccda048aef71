import { Module } from '@nestjs/common';
import { IntakeService } from './intake.service';
import { MllpListenerService } from './mllp-listener.service';
import { SweeperService } from './sweeper.service';

/**
 * MLLP listeners, durable accept (group commit, then ACK), enqueue and the sweeper.
 * Needs EngineConfigModule, StoreModule and QueueModule (global) from the app that imports it.
 */
@Module({
  providers: [IntakeService, MllpListenerService, SweeperService],
  exports: [IntakeService, MllpListenerService, SweeperService],
})
export class GatewayModule {}
