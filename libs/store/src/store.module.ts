import { type DynamicModule, Module, type ModuleMetadata } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { createDataSourceOptions, type StoreOptions } from './data-source';
import { AuditRepository } from './audit.repository';
import { MessageRepository } from './message.repository';

export interface StoreModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Nest's factory signature
  useFactory: (...args: any[]) => StoreOptions | Promise<StoreOptions>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Nest injection tokens
  inject?: any[];
  /** Connection attempts at boot before giving up (default 3; Nest's default is 10). */
  retryAttempts?: number;
  /** Delay between attempts in ms (default 1000). */
  retryDelay?: number;
}

/** Any constant: the advisory lock that serializes migrations across processes. */
const MIGRATION_LOCK_KEY = 727_274_001;

/**
 * Run pending migrations. On PostgreSQL, processes starting together (gateway, worker and api
 * roles) take turns under an advisory lock, so exactly one applies each migration.
 */
export async function runMigrationsLocked(dataSource: DataSource): Promise<void> {
  if (dataSource.options.type !== 'postgres') {
    await dataSource.runMigrations({ transaction: 'each' });
    return;
  }
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await dataSource.runMigrations({ transaction: 'each' });
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}

/**
 * Global module: the TypeORM data source (migrations run at start, never synchronize) and the
 * `MessageRepository` and `AuditRepository`. Also re-exports `TypeOrmModule`, so `DataSource` can be injected.
 */
@Module({})
export class StoreModule {
  static forRoot(options: StoreOptions = {}): DynamicModule {
    return StoreModule.forRootAsync({ useFactory: () => options });
  }

  static forRootAsync(options: StoreModuleAsyncOptions): DynamicModule {
    return {
      module: StoreModule,
      global: true,
      imports: [
        TypeOrmModule.forRootAsync({
          imports: options.imports,
          inject: options.inject,
          useFactory: async (...args: unknown[]) => ({
            ...createDataSourceOptions(await options.useFactory(...args)),
            // Run by dataSourceFactory below, under a lock.
            migrationsRun: false,
            retryAttempts: options.retryAttempts ?? 3,
            retryDelay: options.retryDelay ?? 1000,
          }),
          dataSourceFactory: async (dsOptions) => {
            if (!dsOptions) {
              throw new Error('StoreModule: no data source options');
            }
            const dataSource = await new DataSource(dsOptions).initialize();
            await runMigrationsLocked(dataSource);
            return dataSource;
          },
        }),
      ],
      providers: [
        {
          provide: MessageRepository,
          useFactory: (dataSource: DataSource) => new MessageRepository(dataSource),
          inject: [DataSource],
        },
        {
          provide: AuditRepository,
          useFactory: (dataSource: DataSource) => new AuditRepository(dataSource),
          inject: [DataSource],
        },
      ],
      exports: [MessageRepository, AuditRepository, TypeOrmModule],
    };
  }
}
