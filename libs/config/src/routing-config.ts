import { z } from 'zod';

/**
 * Destinations (where the engine delivers) and routes (what goes where), kept in
 * `config/*.yaml`. Validated at start and by `npm run config:check`.
 */

const idSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and - only');

/** A message type pattern such as `ADT^*`, `ORU^R01` or `*` (same grammar as feeds). */
const messageTypePattern = z
  .string()
  .regex(
    /^(\*|[A-Z0-9]{3}(\^(\*|[A-Z0-9]{2,3}))?)$/,
    'expected a pattern like ADT^*, ORU^R01 or *',
  );

/** An MPI event type pattern: `patient.merged`, `patient.*` or `*`. */
const eventTypePattern = z
  .string()
  .regex(/^(\*|[a-z]+\.(\*|[a-z]+))$/, 'expected an event type like patient.merged or patient.*');

const clientTlsSchema = z
  .object({
    /** CA bundle (PEM) that the server's certificate must verify against; default: system CAs. */
    ca: z.string().min(1).optional(),
    /** Client certificate and key (PEM) for servers that require one. */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Name checked against the server certificate (default: the host). */
    servername: z.string().min(1).optional(),
    /** Refuse servers whose certificate does not verify (only turn off for tests). */
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'cert and key go together',
  });

const retrySchema = z
  .object({
    /** Attempts before a transient failure is dead-lettered; 0 = retry until delivered. */
    maxAttempts: z.number().int().min(0).default(0),
    initialDelayMs: z.number().int().min(10).default(1000),
    maxDelayMs: z.number().int().min(10).default(60_000),
    multiplier: z.number().min(1).max(10).default(2),
  })
  .strict();

const DEFAULT_RETRY = { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2 };

const destinationCommon = {
  id: idSchema,
  /** What is sent: HL7 v2 (re-emitted with the EUID), the JSON event, or a FHIR R4 Bundle. */
  format: z.enum(['hl7', 'json', 'fhir']),
  /**
   * `patient`: one patient's deliveries go out one at a time in order (the default);
   * `none`: no order kept, deliveries go out as fast as `concurrency` allows.
   */
  ordering: z.enum(['patient', 'none']).default('patient'),
  /** Patients (ordering lanes) delivered in parallel by each worker process. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Time allowed for one delivery (connect + send + answer). */
  timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  retry: retrySchema.default(DEFAULT_RETRY),
  /** A paused destination holds its queue at start (resume through the API). */
  paused: z.boolean().default(false),
};

const mllpDestination = z
  .object({
    ...destinationCommon,
    type: z.literal('mllp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    tls: clientTlsSchema.optional(),
    /** Connections kept open to the receiver (one delivery at a time on each). */
    connections: z.number().int().min(1).max(16).default(1),
    /** Check that MSA-2 of the answer echoes the MSH-10 that was sent. */
    checkControlId: z.boolean().default(true),
  })
  .strict();

const authSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
  z
    .object({ type: z.literal('basic'), username: z.string().min(1), password: z.string() })
    .strict(),
]);

const httpDestination = z
  .object({
    ...destinationCommon,
    type: z.literal('http'),
    url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL'),
    method: z.enum(['POST', 'PUT']).default('POST'),
    /** Extra request headers; values may name environment variables as ${NAME}. */
    headers: z.record(z.string(), z.string()).default({}),
    auth: authSchema.optional(),
    tls: clientTlsSchema.optional(),
  })
  .strict();

const fileDestination = z
  .object({
    ...destinationCommon,
    type: z.literal('file'),
    /** Directory written to (relative paths are relative to the config file). */
    directory: z.string().min(1),
  })
  .strict();

export const destinationSchema = z.discriminatedUnion('type', [
  mllpDestination,
  httpDestination,
  fileDestination,
]);

/** One field rule applied to re-emitted HL7 v2 (paths like `PID-3[2].4.1`, `MSH-5`). */
const ruleSchema = z.union([
  z.object({ set: z.string().min(1), value: z.string() }).strict(),
  z.object({ copy: z.string().min(1), to: z.string().min(1) }).strict(),
  z.object({ delete: z.string().min(1) }).strict(),
  z
    .object({
      map: z.string().min(1),
      /** A table under the top-level `tables:`. */
      table: z.string().min(1),
      /** Value when the table has no entry; default: keep the value as it is. */
      default: z.string().optional(),
    })
    .strict(),
]);

const routeSchema = z
  .object({
    id: idSchema,
    /** What the route takes: a feed's processed messages, or MPI events. */
    source: z.union([
      z
        .object({
          /** A feed id, or `*` for every feed. */
          feed: z.string().min(1),
        })
        .strict(),
      z
        .object({
          /** Event types or patterns (`patient.merged`, `patient.*`). */
          events: z.array(eventTypePattern).min(1),
        })
        .strict(),
    ]),
    filter: z
      .object({
        /** Type patterns of the message (or of the message an event came from). */
        messageTypes: z.array(messageTypePattern).min(1).optional(),
        triggers: z.array(z.string().min(1)).min(1).optional(),
        /** MSH-4 (namespace id). */
        sendingFacilities: z.array(z.string().min(1)).min(1).optional(),
        /** PV1-2 (I, O, E, …). */
        patientClasses: z.array(z.string().min(1)).min(1).optional(),
        /** Event sources only: event type patterns. */
        eventTypes: z.array(eventTypePattern).min(1).optional(),
        /**
         * Event sources only: `message` events come from a sender's message (A40, A08, …),
         * `decision` events from a worklist decision or an unmerge (no message).
         */
        origins: z
          .array(z.enum(['message', 'decision']))
          .min(1)
          .optional(),
      })
      .strict()
      .default({}),
    destinations: z.array(idSchema).min(1),
    transform: z
      .object({
        /** HL7 only: add the EUID to PID-3 under the engine's assigning authority. */
        addEuid: z.boolean().default(true),
        /** HL7 only: field rules applied in order. */
        rules: z.array(ruleSchema).default([]),
      })
      .strict()
      .default({ addEuid: true, rules: [] }),
  })
  .strict();

export const routingSchema = {
  destinations: z.array(destinationSchema).default([]),
  routes: z.array(routeSchema).default([]),
  /** Lookup tables for `map` rules: `{ tableName: { from: to } }`. */
  tables: z.record(z.string(), z.record(z.string(), z.string())).default({}),
};

export type DestinationConfig = z.infer<typeof destinationSchema>;
export type MllpDestinationConfig = Extract<DestinationConfig, { type: 'mllp' }>;
export type HttpDestinationConfig = Extract<DestinationConfig, { type: 'http' }>;
export type FileDestinationConfig = Extract<DestinationConfig, { type: 'file' }>;
export type ClientTlsConfig = z.infer<typeof clientTlsSchema>;
export type RetryConfig = z.infer<typeof retrySchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type FieldRule = z.infer<typeof ruleSchema>;
export type RouteFilter = RouteConfig['filter'];

/** True when an event type matches `patient.merged`, `patient.*` or `*`. */
export function matchesEventPattern(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) {
    return true;
  }
  return pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1));
}
