export * from './worker.module';
export * from './inbound.processor';
