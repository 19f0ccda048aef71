export * from './settings';
export * from './engine-config';
export * from './config.module';
