import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_TYPES } from '@engine/mpi';
import { ConfigFileError, KNOWN_EVENT_TYPES, loadEngineConfig } from './engine-config';
import { matchesEventPattern } from './routing-config';

const FEEDS = `feeds:
  - { id: default, port: 2575, accept: ['ADT^*'] }
`;

describe('routing config', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'routing-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  function problems(file: string, env: Record<string, string> = {}): string[] {
    try {
      loadEngineConfig(file, env);
    } catch (err) {
      if (err instanceof ConfigFileError) {
        return err.problems.map((p) => `${err.file === file ? '' : `${err.file}: `}${p}`);
      }
      throw err;
    }
    throw new Error('expected the config to be refused');
  }

  it('loads the shipped config with its included routing file', () => {
    const cfg = loadEngineConfig(join(__dirname, '../../../config/engine.yaml'), {});
    expect(cfg.destinations.map((d) => [d.id, d.type, d.format])).toEqual([
      ['ehr', 'mllp', 'hl7'],
      ['billing', 'http', 'json'],
    ]);
    expect(cfg.routes.map((r) => r.id)).toEqual([
      'adt-oru-to-ehr',
      'patient-events-to-billing',
      'decisions-to-ehr',
    ]);
  });

  it('applies defaults, resolves paths against the naming file and interpolates ${ENV}', () => {
    const file = write(
      'engine.yaml',
      `${FEEDS}include: [sub/routing.yaml]
destinations:
  - { id: out, type: file, directory: outbox, format: json }
  - { id: ehr, type: mllp, host: '\${EHR_HOST:-127.0.0.1}', port: 6661, format: hl7 }
  - { id: ehr2, type: mllp, host: '\${EHR2_HOST:-127.0.0.1}', port: 6662, format: hl7 }
`,
    );
    mkdirSync(join(dir, 'sub'));
    write(
      'sub/routing.yaml',
      `destinations:
  - id: billing
    type: http
    url: 'https://\${BILLING_HOST}/events'
    format: json
    headers: { X-Key: '\${BILLING_KEY}' }
    auth: { type: bearer, token: '\${BILLING_TOKEN}' }
    tls: { ca: certs/ca.pem }
routes:
  - id: all
    source: { feed: '*' }
    destinations: [out, billing]
tables: { wards: { W1: WARD-1 } }
`,
    );
    const cfg = loadEngineConfig(file, {
      BILLING_HOST: 'billing.example',
      BILLING_KEY: 'k1',
      BILLING_TOKEN: 't1',
      EHR_HOST: 'ehr.internal',
    });
    const [out, ehr, ehr2, billing] = cfg.destinations;
    expect([ehr, ehr2].map((d) => (d.type === 'mllp' ? d.host : ''))).toEqual([
      'ehr.internal',
      '127.0.0.1',
    ]);
    expect(out).toMatchObject({
      type: 'file',
      directory: join(dir, 'outbox'),
      ordering: 'patient',
      concurrency: 4,
      timeoutMs: 10_000,
      paused: false,
      retry: { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2 },
    });
    expect(billing).toMatchObject({
      url: 'https://billing.example/events',
      method: 'POST',
      headers: { 'X-Key': 'k1' },
      auth: { type: 'bearer', token: 't1' },
      tls: { ca: join(dir, 'sub/certs/ca.pem'), rejectUnauthorized: true },
    });
    expect(cfg.routes[0]).toMatchObject({
      filter: {},
      transform: { addEuid: true, rules: [] },
    });
    expect(cfg.tables).toEqual({ wards: { W1: 'WARD-1' } });
  });

  it('names the file, the path and the problem', () => {
    const file = write(
      'engine.yaml',
      `${FEEDS}destinations:
  - { id: ehr, type: mllp, host: ehr.local, port: 70000, format: hl7 }
  - { id: bill, type: http, url: 'ftp://x', format: xml }
  - { id: f, type: file, format: json }
  - { id: Bad, type: sftp, format: hl7 }
`,
    );
    expect(problems(file)).toEqual([
      'destinations[0].port: Too big: expected number to be <=65535',
      'destinations[1].format: Invalid option: expected one of "hl7"|"json"|"fhir"',
      'destinations[1].url: must be an http:// or https:// URL',
      'destinations[2].directory: Invalid input: expected string, received undefined',
      expect.stringMatching(/^destinations\[3\]\.type: /),
    ]);
  });

  it('cross-checks routes against feeds, destinations, event types and tables', () => {
    const file = write(
      'engine.yaml',
      `${FEEDS}destinations:
  - { id: ehr, type: mllp, host: ehr.local, port: 6661, format: hl7 }
  - { id: f, type: file, directory: out, format: json }
routes:
  - id: r1
    source: { feed: nope }
    filter: { eventTypes: [patient.merged] }
    destinations: [ehr, missing]
  - id: r2
    source: { events: [patient.exploded] }
    destinations: [f]
    transform: { rules: [{ set: 'PID-x', value: 'y' }, { map: PV1-3.1, table: wards }] }
  - { id: r2, source: { feed: default }, destinations: [ehr] }
`,
    );
    expect(problems(file)).toEqual([
      'routes[0].source.feed: no feed "nope"',
      'routes[0].filter: eventTypes and origins filter event sources only',
      'routes[0].destinations[1]: no destination "missing"',
      'routes[1].source.events: no event type matches patient.exploded',
      'routes[1].transform.rules: field rules apply to HL7 output; destination "f" has format json',
      'routes[1].transform.rules[0]: bad path "PID-x" (expected e.g. PID-3, PID-3[2].4.1, MSH-5.1)',
      'routes[1].transform.rules[1].table: no table "wards"',
      'routes[2].id: duplicate route id "r2"',
    ]);
  });

  it('reports duplicate ids, missing env variables and problems in included files', () => {
    const file = write(
      'engine.yaml',
      `${FEEDS}include: [more.yaml]
destinations:
  - { id: a, type: file, directory: out, format: hl7 }
`,
    );
    write(
      'more.yaml',
      `destinations:
  - { id: a, type: http, url: 'http://\${NOPE}/x', format: json }
routes:
  - { id: r, source: { feed: default }, destinations: [a], retry: 3 }
`,
    );
    expect(problems(file)).toEqual(
      expect.arrayContaining([
        `${join(dir, 'more.yaml')}: destinations[0].url: environment variable NOPE is not set`,
        `${join(dir, 'more.yaml')}: destinations[0].id: duplicate destination id "a"`,
        expect.stringContaining(`${join(dir, 'more.yaml')}: routes[0]: Unrecognized key`),
      ]),
    );
  });

  it('refuses anything but destinations, routes and tables in an included file', () => {
    const file = write('engine.yaml', `${FEEDS}include: [bad.yaml]\n`);
    write('bad.yaml', 'feeds: []\n');
    expect(problems(file)).toEqual([
      `${join(dir, 'bad.yaml')}: feeds: not allowed in an included file (only destinations, routes, tables)`,
    ]);
  });

  it('knows every event type libs/mpi writes', () => {
    expect([...KNOWN_EVENT_TYPES].sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('matches event patterns', () => {
    expect(matchesEventPattern('*', 'patient.merged')).toBe(true);
    expect(matchesEventPattern('patient.*', 'patient.merged')).toBe(true);
    expect(matchesEventPattern('patient.*', 'encounter.created')).toBe(false);
    expect(matchesEventPattern('patient.merged', 'patient.merged')).toBe(true);
    expect(matchesEventPattern('patient.merged', 'patient.linked')).toBe(false);
  });
});
