import { z } from 'zod';

/**
 * Process settings read from the environment once, at boot, and validated.
 * Every setting is documented in the README's configuration table.
 */
export const settingsSchema = z.object({
  HL7_CONFIG: z.string().min(1).default('config/engine.yaml'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** postgres:// URL; unset or empty means an embedded SQLite file (SQLITE_PATH). */
  DATABASE_URL: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()))
    .refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), {
      message: 'must be a postgres:// or postgresql:// URL (or unset for embedded SQLite)',
    }),
  SQLITE_PATH: z.string().min(1).default('data/engine.sqlite'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HTTP_HOST: z.string().default('0.0.0.0'),
  /**
   * Processes without the api role (a separate gateway or worker) serve GET /metrics on this
   * port when it is set (their own counters: pipeline, delivery, gateway).
   */
  METRICS_PORT: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : Number(v)))
    .refine((v) => v === undefined || (Number.isInteger(v) && v >= 0 && v <= 65535), {
      message: 'must be a port number (0-65535)',
    }),
  ADMIN_API_KEY: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v))
    .refine((v) => v === undefined || v.length >= 16, {
      message: 'must be at least 16 characters',
    }),
  /** Prefix of every BullMQ key (lets several engines or test runs share one Redis). */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}-]+$/, 'letters, digits, _ - { } only')
    .default('hl7'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().default('production'),
});

export type Settings = z.infer<typeof settingsSchema>;

export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment settings:\n  ${problems.join('\n  ')}`);
    this.name = 'SettingsError';
  }
}

/** Validate the environment; throws SettingsError naming every bad variable. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    throw new SettingsError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`),
    );
  }
  return parsed.data;
}
