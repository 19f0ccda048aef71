export * from './names';
export * from './partition';
export * from './redis';
export * from './inbound-queues';
export * from './delivery-queues';
export * from './queue.module';
