import { type DynamicModule, Global, Module } from '@nestjs/common';
import { resolve } from 'node:path';
import { type EngineConfig, loadEngineConfig } from './engine-config';
import { loadSettings, type Settings } from './settings';

export const SETTINGS = Symbol('SETTINGS');
export const ENGINE_CONFIG = Symbol('ENGINE_CONFIG');

export interface ConfigModuleOptions {
  /** Override settings (tests); defaults to validating process.env. */
  settings?: Settings;
  /** Override the engine config (tests); defaults to loading settings.HL7_CONFIG. */
  engineConfig?: EngineConfig;
}

/**
 * Validated process settings (env) and engine config (YAML), loaded once at boot.
 * Inject with `@Inject(SETTINGS) settings: Settings` and `@Inject(ENGINE_CONFIG) config: EngineConfig`.
 */
@Global()
@Module({})
export class EngineConfigModule {
  static forRoot(options: ConfigModuleOptions = {}): DynamicModule {
    const settings = options.settings ?? loadSettings();
    const engineConfig = options.engineConfig ?? loadEngineConfig(resolve(settings.HL7_CONFIG));
    return {
      module: EngineConfigModule,
      providers: [
        { provide: SETTINGS, useValue: settings },
        { provide: ENGINE_CONFIG, useValue: engineConfig },
      ],
      exports: [SETTINGS, ENGINE_CONFIG],
    };
  }
}
