import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import {
  type DestinationConfig,
  matchesEventPattern,
  type RouteConfig,
  routingSchema,
} from './routing-config';

/** A message type pattern such as `ADT^*`, `ORU^R01` or `*`. */
const typePattern = z
  .string()
  .regex(
    /^(\*|[A-Z0-9]{3}(\^(\*|[A-Z0-9]{2,3}))?)$/,
    'expected a pattern like ADT^*, ORU^R01 or *',
  );

const tlsSchema = z
  .object({
    /** PEM files, paths relative to the config file. */
    cert: z.string().min(1),
    key: z.string().min(1),
    /** CA bundle used to verify client certificates. */
    ca: z.string().min(1).optional(),
    /** Ask clients for a certificate and refuse those that do not verify against `ca`. */
    requireClientCert: z.boolean().default(false),
  })
  .strict();

export const SUPPORTED_VERSIONS = [
  '2.1',
  '2.2',
  '2.3',
  '2.3.1',
  '2.4',
  '2.5',
  '2.5.1',
  '2.6',
  '2.7',
  '2.7.1',
  '2.8',
  '2.8.1',
  '2.8.2',
] as const;

const feedSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and - only'),
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535),
    tls: tlsSchema.optional(),
    /** Accepted message types; anything else is rejected with AR (0357 code 200/201). */
    accept: z.array(typePattern).min(1),
    /** Accepted HL7 versions (MSH-12); anything else is rejected with AR (203). */
    versions: z
      .array(z.string())
      .min(1)
      .default([...SUPPORTED_VERSIONS]),
    /** auto: enhanced mode (CA/CE/CR) when MSH-15/16 are valued, else original mode (AA/AE/AR). */
    ackMode: z.enum(['auto', 'original', 'enhanced']).default('auto'),
    /**
     * Honour MSH-15 (accept acknowledgment type) in enhanced mode: NE never answered, ER only on
     * errors, SU only on success. Off by default: many MLLP senders wait for an ACK whatever
     * MSH-15 says (a sender marking NE/NE would otherwise hang).
     */
    honorAcceptAckType: z.boolean().default(false),
    /** Largest framed message accepted; larger frames get AR and are discarded. */
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024),
    /** Bytes outside MLLP frames tolerated before the connection is closed as not HL7. */
    maxNoiseBytes: z.number().int().min(16).default(65536),
    /** Connections idle this long are closed. 0 disables. */
    idleTimeoutSeconds: z.number().int().min(0).default(300),
    maxConnections: z.number().int().min(1).default(100),
    /** Charset used when MSH-18 is empty. */
    defaultCharset: z.string().default('UTF-8'),
    duplicates: z
      .object({
        /**
         * ack: a resend (same feed, sending facility, MSH-10 and bytes within the window) is
         * ACKed again and not processed twice; process: every arrival is a new message.
         */
        policy: z.enum(['ack', 'process']).default('ack'),
        windowSeconds: z.number().int().min(1).default(86400),
      })
      .strict()
      .default({ policy: 'ack', windowSeconds: 86400 }),
  })
  .strict();

/** Survivorship rules for one golden-record field. */
export const SURVIVORSHIP_RULES = ['mostRecent', 'mostTrusted', 'mostFrequent'] as const;
export type SurvivorshipRule = (typeof SURVIVORSHIP_RULES)[number];

/** Golden-record fields a survivorship rule can be set for. */
export const GOLDEN_FIELDS = [
  'name',
  'birthDate',
  'sex',
  'address',
  'telecom',
  'ssn',
  'mothersMaidenName',
  'race',
  'ethnicity',
  'language',
  'maritalStatus',
  'multipleBirth',
  'deceased',
] as const;
export type GoldenField = (typeof GOLDEN_FIELDS)[number];

const workerSchema = z
  .object({
    /**
     * What a message that fails for good does to the rest of its partition: `park` marks it
     * `error` and goes on; `hold` marks it `error` and stops the partition until it is
     * reprocessed (or skipped) through the API.
     */
    failurePolicy: z.enum(['park', 'hold']).default('park'),
    /** Most messages of one partition applied in one transaction. */
    batchSize: z.number().int().min(1).max(1000).default(100),
    /** Partition lease: a worker that stops renewing loses its partitions after this long. */
    leaseSeconds: z.number().int().min(2).max(300).default(15),
    /** Attempts for transient failures (database or Redis unreachable), exponential backoff. */
    attempts: z.number().int().min(1).max(100).default(8),
    backoffMs: z.number().int().min(10).max(600_000).default(1000),
  })
  .strict();

const mpiSchema = z
  .object({
    /** Assigning authority under which the engine issues enterprise ids (EUIDs). */
    euidAuthority: z.string().min(1).default('EUID'),
    survivorship: z
      .object({
        /** Rule for fields not listed in `fields`. */
        default: z.enum(SURVIVORSHIP_RULES).default('mostRecent'),
        /** Assigning authorities, most trusted first (for `mostTrusted`). */
        trustedAuthorities: z.array(z.string().min(1)).default([]),
        fields: z.partialRecord(z.enum(GOLDEN_FIELDS), z.enum(SURVIVORSHIP_RULES)).default({}),
      })
      .strict()
      .default({ default: 'mostRecent', trustedAuthorities: [], fields: {} }),
    /** Whether ORU messages may update demographics of an existing source record. */
    resultsUpdateDemographics: z.boolean().default(false),
    /**
     * How a new source record finds its person: `probabilistic` matching (blocking + scoring,
     * with the duplicate worklist) or the `deterministic` rule (same SSN + birth date + sex).
     */
    identity: z.enum(['probabilistic', 'deterministic']).default('probabilistic'),
    /**
     * Matching overrides `{ thresholds: { autoLink, review }, m?, u? }`; checked by the MPI
     * library at start (errors name the path, e.g. `mpi.matching.thresholds.review`).
     */
    matching: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const engineConfigSchema = z
  .object({
    engine: z
      .object({
        /** Number of inbound partitions (queues); one patient's messages always share one. */
        partitions: z.number().int().min(1).max(1024).default(16),
        /** Most messages written in one group commit. */
        maxBatch: z.number().int().min(1).max(5000).default(500),
        /** Concurrent group-commit transactions. */
        maxInflightCommits: z.number().int().min(1).max(32).default(2),
        sweeper: z
          .object({
            intervalSeconds: z.number().int().min(1).default(30),
            /** Only messages older than this are considered lost from Redis. */
            graceSeconds: z.number().int().min(0).default(10),
          })
          .strict()
          .default({ intervalSeconds: 30, graceSeconds: 10 }),
      })
      .strict()
      .default({
        partitions: 16,
        maxBatch: 500,
        maxInflightCommits: 2,
        sweeper: { intervalSeconds: 30, graceSeconds: 10 },
      }),
    feeds: z.array(feedSchema).default([]),
    worker: workerSchema.default({
      failurePolicy: 'park',
      batchSize: 100,
      leaseSeconds: 15,
      attempts: 8,
      backoffMs: 1000,
    }),
    mpi: mpiSchema.default({
      euidAuthority: 'EUID',
      survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
      resultsUpdateDemographics: false,
      identity: 'probabilistic',
    }),
    /** Other YAML files (relative to this one) holding more destinations, routes and tables. */
    include: z.array(z.string().min(1)).default([]),
    ...routingSchema,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    checkRouting(cfg, ctx);
    const ids = new Set<string>();
    const ports = new Set<string>();
    cfg.feeds.forEach((f, i) => {
      if (ids.has(f.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['feeds', i, 'id'],
          message: `duplicate feed id "${f.id}"`,
        });
      }
      ids.add(f.id);
      const hp = `${f.host}:${f.port}`;
      if (f.port !== 0 && ports.has(hp)) {
        ctx.addIssue({
          code: 'custom',
          path: ['feeds', i, 'port'],
          message: `port ${hp} already used by another feed`,
        });
      }
      ports.add(hp);
    });
  });

/** A field-rule path: `PID-3`, `PID-3[2].4.1`, `MSH-5.1` (the grammar of libs/hl7 paths). */
const RULE_PATH = /^[A-Z][A-Z0-9]{2}(\[\d+\])?-\d+(\[\d+\])?(\.\d+){0,2}$/;

interface RoutingPart {
  feeds: Array<{ id: string }>;
  destinations: DestinationConfig[];
  routes: RouteConfig[];
  tables: Record<string, Record<string, string>>;
}

/** Cross-checks of destinations and routes (ids, references, rules). */
function checkRouting(cfg: RoutingPart, ctx: z.RefinementCtx): void {
  const issue = (path: PropertyKey[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  const destinations = new Map<string, (typeof cfg.destinations)[number]>();
  cfg.destinations.forEach((d, i) => {
    if (destinations.has(d.id)) {
      issue(['destinations', i, 'id'], `duplicate destination id "${d.id}"`);
    }
    destinations.set(d.id, d);
  });
  const feeds = new Set(cfg.feeds.map((f) => f.id));
  const routeIds = new Set<string>();
  cfg.routes.forEach((r, i) => {
    if (routeIds.has(r.id)) {
      issue(['routes', i, 'id'], `duplicate route id "${r.id}"`);
    }
    routeIds.add(r.id);
    if ('feed' in r.source && r.source.feed !== '*' && !feeds.has(r.source.feed)) {
      issue(['routes', i, 'source', 'feed'], `no feed "${r.source.feed}"`);
    }
    if ('feed' in r.source && (r.filter.eventTypes || r.filter.origins)) {
      issue(['routes', i, 'filter'], 'eventTypes and origins filter event sources only');
    }
    if ('events' in r.source) {
      const unknown = r.source.events.filter(
        (p) => !KNOWN_EVENT_TYPES.some((t) => matchesEventPattern(p, t)),
      );
      if (unknown.length > 0) {
        issue(['routes', i, 'source', 'events'], `no event type matches ${unknown.join(', ')}`);
      }
    }
    r.destinations.forEach((id, j) => {
      const d = destinations.get(id);
      if (!d) {
        issue(['routes', i, 'destinations', j], `no destination "${id}"`);
      } else if (r.transform.rules.length > 0 && d.format !== 'hl7') {
        issue(
          ['routes', i, 'transform', 'rules'],
          `field rules apply to HL7 output; destination "${id}" has format ${d.format}`,
        );
      }
    });
    r.transform.rules.forEach((rule, j) => {
      const paths =
        'set' in rule
          ? [rule.set]
          : 'copy' in rule
            ? [rule.copy, rule.to]
            : 'delete' in rule
              ? [rule.delete]
              : [rule.map];
      for (const p of paths) {
        if (!RULE_PATH.test(p)) {
          issue(
            ['routes', i, 'transform', 'rules', j],
            `bad path "${p}" (expected e.g. PID-3, PID-3[2].4.1, MSH-5.1)`,
          );
        }
      }
      if ('map' in rule && !(rule.table in cfg.tables)) {
        issue(['routes', i, 'transform', 'rules', j, 'table'], `no table "${rule.table}"`);
      }
    });
  });
}

/** MPI event types a route may name (kept in step with libs/mpi EVENT_TYPES by a test). */
export const KNOWN_EVENT_TYPES = [
  'patient.created',
  'patient.updated',
  'patient.merged',
  'patient.linked',
  'patient.unlinked',
  'patient.unmerged',
  'patient.deleted',
  'duplicate.suspected',
  'duplicate.resolved',
  'identifier.changed',
  'encounter.created',
  'encounter.updated',
  'encounter.merged',
  'encounter.deleted',
  'result.created',
  'result.updated',
  'result.corrected',
] as const;

export type EngineConfig = z.infer<typeof engineConfigSchema>;
export type FeedConfig = EngineConfig['feeds'][number];
export type TlsConfig = NonNullable<FeedConfig['tls']>;
export type WorkerConfig = EngineConfig['worker'];
export type MpiConfig = EngineConfig['mpi'];
export type SurvivorshipConfig = MpiConfig['survivorship'];

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigFileError';
  }
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

/** Validate an already-parsed config object; `file` is used in error messages only. */
export function validateEngineConfig(raw: unknown, file = '(inline)'): EngineConfig {
  const parsed = engineConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigFileError(
      file,
      parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  }
  return parsed.data;
}

/** Reads and parses one YAML file into a plain object (errors name the file). */
function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigFileError(file, [`cannot read file: ${(err as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigFileError(
      file,
      doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) {
    return {};
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigFileError(file, ['(root): expected a mapping']);
  }
  return value as Record<string, unknown>;
}

const INCLUDABLE = ['destinations', 'routes', 'tables'] as const;

/** Where each destination and route came from, to name the right file in errors. */
interface Origin {
  file: string;
  index: number;
}

/**
 * Read, parse and validate a YAML engine config and the files it includes; errors name the
 * file, the path and the problem. Relative paths (TLS files, file destinations, includes) are
 * relative to the file that names them; `${NAME}` in HTTP urls, headers and auth is replaced by
 * the environment variable NAME (`${NAME:-default}` when it may be unset).
 */
export function loadEngineConfig(
  file: string,
  env: Record<string, string | undefined> = process.env,
): EngineConfig {
  const root = readYaml(file);
  const base = dirname(resolve(file));
  const origins: Record<'destinations' | 'routes', Origin[]> = { destinations: [], routes: [] };
  const merged: Record<string, unknown> = { ...root };
  const tagOrigins = (raw: Record<string, unknown>, f: string, dir: string) => {
    for (const key of ['destinations', 'routes'] as const) {
      const list = raw[key];
      if (Array.isArray(list)) {
        list.forEach((item: unknown, index) => {
          origins[key].push({ file: f, index });
          if (key === 'destinations') {
            resolveDestinationPaths(item, dir);
          }
        });
      }
    }
  };
  tagOrigins(root, file, base);
  const includes = Array.isArray(root.include) ? (root.include as unknown[]) : [];
  for (const inc of includes) {
    if (typeof inc !== 'string') {
      continue; // reported by the schema
    }
    const incFile = resolve(base, inc);
    const raw = readYaml(incFile);
    const extra = Object.keys(raw).filter((k) => !(INCLUDABLE as readonly string[]).includes(k));
    if (extra.length > 0) {
      throw new ConfigFileError(
        incFile,
        extra.map((k) => `${k}: not allowed in an included file (only ${INCLUDABLE.join(', ')})`),
      );
    }
    for (const key of ['destinations', 'routes'] as const) {
      if (raw[key] !== undefined && !Array.isArray(raw[key])) {
        throw new ConfigFileError(incFile, [`${key}: expected a list`]);
      }
    }
    tagOrigins(raw, incFile, dirname(incFile));
    for (const key of ['destinations', 'routes'] as const) {
      if (raw[key] !== undefined) {
        merged[key] = [...((merged[key] as unknown[] | undefined) ?? []), ...(raw[key] as [])];
      }
    }
    if (raw.tables !== undefined) {
      merged.tables = {
        ...(merged.tables ?? {}),
        ...(raw.tables as object),
      };
    }
  }
  const problems: Array<{ file: string; problem: string }> = [];
  interpolateEnv(merged, env, origins, problems);
  const parsed = engineConfigSchema.safeParse(merged);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const [key, index, ...rest] = i.path;
      const origin =
        (key === 'destinations' || key === 'routes') && typeof index === 'number'
          ? origins[key][index]
          : undefined;
      problems.push(
        origin
          ? {
              file: origin.file,
              problem: `${formatPath([key, origin.index, ...rest])}: ${i.message}`,
            }
          : { file, problem: `${formatPath(i.path)}: ${i.message}` },
      );
    }
  }
  if (problems.length > 0) {
    const first = problems[0].file;
    const sameFile = problems.every((p) => p.file === first);
    throw new ConfigFileError(
      sameFile ? first : file,
      problems.map((p) => (sameFile ? p.problem : `${p.file}: ${p.problem}`)),
    );
  }
  const config = parsed.data as EngineConfig;
  // TLS file paths are relative to the config file.
  for (const feed of config.feeds) {
    if (feed.tls) {
      feed.tls.cert = resolve(base, feed.tls.cert);
      feed.tls.key = resolve(base, feed.tls.key);
      if (feed.tls.ca !== undefined) {
        feed.tls.ca = resolve(base, feed.tls.ca);
      }
    }
  }
  return config;
}

/** Makes a raw destination's file paths absolute (relative to the file naming them). */
function resolveDestinationPaths(item: unknown, dir: string): void {
  if (item === null || typeof item !== 'object') {
    return;
  }
  const d = item as Record<string, unknown>;
  if (typeof d.directory === 'string') {
    d.directory = resolve(dir, d.directory);
  }
  const tls = d.tls as Record<string, unknown> | undefined;
  if (tls && typeof tls === 'object') {
    for (const k of ['ca', 'cert', 'key']) {
      if (typeof tls[k] === 'string') {
        tls[k] = resolve(dir, tls[k]);
      }
    }
  }
}

/**
 * Replaces `${NAME}` (or `${NAME:-default}`) in destinations' host, url, headers and auth with
 * environment values.
 */
function interpolateEnv(
  merged: Record<string, unknown>,
  env: Record<string, string | undefined>,
  origins: Record<'destinations' | 'routes', Origin[]>,
  problems: Array<{ file: string; problem: string }>,
): void {
  const list = merged.destinations;
  if (!Array.isArray(list)) {
    return;
  }
  list.forEach((item: unknown, i) => {
    if (item === null || typeof item !== 'object') {
      return;
    }
    const d = item as Record<string, unknown>;
    const origin = origins.destinations[i];
    const sub = (value: unknown, path: PropertyKey[]): unknown => {
      if (typeof value !== 'string') {
        return value;
      }
      return value.replace(
        /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
        (_m, name: string, fallback: string | undefined) => {
          const v = env[name] ?? fallback;
          if (v === undefined) {
            problems.push({
              file: origin.file,
              problem: `${formatPath(['destinations', origin.index, ...path])}: environment variable ${name} is not set`,
            });
            return '';
          }
          return v;
        },
      );
    };
    if ('host' in d) {
      d.host = sub(d.host, ['host']);
    }
    if ('url' in d) {
      d.url = sub(d.url, ['url']);
    }
    for (const key of ['headers', 'auth'] as const) {
      const obj = d[key];
      if (obj && typeof obj === 'object') {
        for (const [k, v] of Object.entries(obj)) {
          (obj as Record<string, unknown>)[k] = sub(v, [key, k]);
        }
      }
    }
  });
}

/** True when `type^trigger` matches a pattern such as `ADT^*`, `ORU^R01` or `*`. */
export function matchesTypePattern(pattern: string, type: string, trigger: string): boolean {
  if (pattern === '*') {
    return true;
  }
  const [pType, pTrigger] = pattern.split('^');
  if (pType !== type) {
    return false;
  }
  return pTrigger === undefined || pTrigger === '*' || pTrigger === trigger;
}
