export * from './worker.module';
export * from './inbound.processor';
export * from './delivery.service';
