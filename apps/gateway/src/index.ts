export * from './gateway.module';
export * from './intake';
export * from './intake.service';
export * from './mllp-listener.service';
export * from './sweeper.service';
export * from './group-committer';
