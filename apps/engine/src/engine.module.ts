import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import {
  type EngineConfig,
  EngineConfigModule,
  loadEngineConfig,
  loadSettings,
  type Settings,
} from '@engine/config';
import { StoreModule } from '@engine/store';
import { QueueModule } from '@engine/queue';
import { GatewayModule } from '@engine/gateway';
import { WorkerModule } from '@engine/worker';
import { ApiModule } from '@engine/api';
import type { Role } from './roles';

export interface EngineModuleOptions {
  roles: Role[];
  settings?: Settings;
  engineConfig?: EngineConfig;
}

/** The composition root: infrastructure modules plus the feature modules of the chosen roles. */
@Module({})
export class EngineModule {
  static forRoot(options: EngineModuleOptions): DynamicModule {
    const settings = options.settings ?? loadSettings();
    const engineConfig = options.engineConfig ?? loadEngineConfig(settings.HL7_CONFIG);
    const roles = new Set(options.roles);
    return {
      module: EngineModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: settings.LOG_LEVEL,
            // Request logs carry method, path and status only: never bodies, queries or keys.
            serializers: {
              req: (req: { method?: string; url?: string }) => ({
                method: req.method,
                path: (req.url ?? '').split('?')[0],
              }),
              res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
            },
            autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health') },
          },
        }),
        EngineConfigModule.forRoot({ settings, engineConfig }),
        StoreModule.forRoot({
          databaseUrl: settings.DATABASE_URL,
          sqlitePath: settings.SQLITE_PATH,
          poolSize: settings.DATABASE_POOL_SIZE,
        }),
        QueueModule,
        ...(roles.has('gateway') ? [GatewayModule] : []),
        ...(roles.has('worker') ? [WorkerModule] : []),
        ...(roles.has('api') ? [ApiModule] : []),
      ],
    };
  }
}
