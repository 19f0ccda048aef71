import type { DataSource } from 'typeorm';
import { type EngineConfig, loadEngineConfig, loadSettings, type Settings } from '@engine/config';
import { createDataSource } from '@engine/store';

/** What the MPI batch commands run against: the engine's own settings and config. */
export interface MpiContext {
  settings: Settings;
  config: EngineConfig;
  dataSource: DataSource;
}

/**
 * Opens the engine's database (DATABASE_URL, else the SQLite file at SQLITE_PATH) with the
 * engine's config (HL7_CONFIG), running pending migrations like the engine does at start.
 */
export async function openMpi(): Promise<MpiContext> {
  const settings = loadSettings();
  const config = loadEngineConfig(settings.HL7_CONFIG);
  const dataSource = createDataSource({
    databaseUrl: settings.DATABASE_URL,
    sqlitePath: settings.SQLITE_PATH,
    poolSize: 4,
  });
  await dataSource.initialize();
  return { settings, config, dataSource };
}

/** Seconds as `1m05s` / `42s`. */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
