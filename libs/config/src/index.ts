export * from './settings';
export * from './engine-config';
export * from './routing-config';
export * from './config.module';
