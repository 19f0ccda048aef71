export * from './api.module';
export * from './auth.guard';
