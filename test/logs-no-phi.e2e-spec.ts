import type { ChildProcess } from 'node:child_process';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '@engine/store/testing';
import { ADMIN_KEY, REDIS_URL } from './support/engine';
import { ackField, TestMllpClient } from './support/mllp-client';
import { spawnEngine, writeEngineConfig } from './support/pipeline';
import { freePort, killSinks, startSink } from './support/sinks';
import { waitFor } from './support/wait';

/**
 * Patient data never reaches the logs. One engine process with every role, logging at debug
 * level, is fed messages carrying distinctive names, birth dates, addresses, phone numbers,
 * SSNs and result texts through every path that logs: accepted, resent, rejected for each
 * reason, failed in the pipeline, merged, delivered, dead-lettered by a receiver that quotes
 * the message, retried against a receiver that is down, and read back through the API. Its
 * whole output is then searched for each of those values.
 */

jest.setTimeout(120_000);

const PHI = {
  family: 'QZXFAMILYQ',
  given: 'QZXGIVENQ',
  family2: 'QZXOTHERQ',
  birth: '19310217',
  birthIso: '1931-02-17',
  street: 'QZXSTREETQ',
  city: 'QZXCITYQ',
  phone: '5550142977',
  ssn: '987659876',
  result: 'QZXRESULTQ',
};

const MSH = (id: string, type: string, version = '2.5.1') =>
  `MSH|^~\\&|SENDER|FAC|ENGINE|DEST|20240101120000||${type}|${id}|P|${version}`;
const PID = (mrn: string, family = PHI.family) =>
  `PID|1||${mrn}^^^HOSP^MR||${family}^${PHI.given}||${PHI.birth}|F|||1 ${PHI.street}^^${PHI.city}^ST^12345||${PHI.phone}|||||${PHI.ssn}`;
const msg = (...segments: string[]) => segments.join('\r') + '\r';

describe('patient data stays out of the logs (e2e)', () => {
  let db: TestDatabase;
  let engine: ChildProcess | undefined;
  let output = '';
  let ds: DataSource | undefined;
  let cleanupConfig: (() => void) | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    engine?.kill('SIGKILL');
    killSinks();
    await ds?.destroy();
    cleanupConfig?.();
    await db.drop();
  });

  it('logs no name, birth date, address, phone, SSN, result or raw segment on any path', async () => {
    // A records system that answers AE to the A08 (quoting it back is its business: the engine
    // must not log what it says), and a billing system that is down.
    const ehr = await startSink('sink-mllp.ts', ['--quiet', '--reject-pattern', 'ADT\\^A08'], 0);
    const down = await freePort();
    const [mllpPort, httpPort] = [await freePort(), await freePort()];
    const prefix = `phi${Date.now()}`;
    const cfg = writeEngineConfig(
      `engine:\n  partitions: 2\nmpi:\n  identity: probabilistic\n` +
        `feeds:\n  - { id: default, host: 127.0.0.1, port: ${mllpPort}, accept: ['ADT^*', 'ORU^R01'] }\n` +
        `destinations:\n` +
        `  - { id: ehr, type: mllp, host: 127.0.0.1, port: ${ehr.port}, format: hl7, retry: { maxAttempts: 2, initialDelayMs: 100 } }\n` +
        `  - { id: billing, type: http, url: 'http://127.0.0.1:${down}/events', format: json, retry: { initialDelayMs: 200 } }\n` +
        `routes:\n` +
        `  - { id: to-ehr, source: { feed: '*' }, destinations: [ehr] }\n` +
        `  - { id: to-billing, source: { events: ['patient.*'] }, destinations: [billing] }\n`,
    );
    cleanupConfig = cfg.cleanup;
    engine = spawnEngine(
      [],
      {
        HL7_CONFIG: cfg.file,
        DATABASE_URL: db.url,
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(httpPort),
        ADMIN_API_KEY: ADMIN_KEY,
        LOG_LEVEL: 'debug',
      },
      (s) => (output += s),
    );
    const api = (path: string) =>
      fetch(`http://127.0.0.1:${httpPort}${path}`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
    await waitFor(
      'the engine to be ready',
      async () => ((await api('/health/ready')).status === 200 ? true : undefined),
      60_000,
    );

    const c = await TestMllpClient.connect(mllpPort);
    try {
      const register = msg(MSH('PHI-1', 'ADT^A04'), 'EVN|A04|20240101120000', PID('M1'), 'PV1|1|O');
      const answers: Record<string, string> = {
        register: await c.send(register),
        resend: await c.send(register),
        update: await c.send(
          msg(MSH('PHI-2', 'ADT^A08'), 'EVN|A08|20240101120100', PID('M1'), 'PV1|1|O'),
        ),
        result: await c.send(
          msg(
            MSH('PHI-3', 'ORU^R01^ORU_R01'),
            PID('M1'),
            'OBR|1||ACC1|11502-2^LAB REPORT^LN|||20240101110000',
            `OBX|1|TX|11502-2^LAB REPORT^LN||${PHI.result} ${PHI.family}||||||F`,
            `NTE|1||${PHI.result}`,
          ),
        ),
        lookalike: await c.send(msg(MSH('PHI-4', 'ADT^A04'), PID('M2', PHI.family2), 'PV1|1|O')),
        merge: await c.send(msg(MSH('PHI-5', 'ADT^A40^ADT_A39'), PID('M1'), 'MRG|M2^^^HOSP^MR')),
        noPatientId: await c.send(
          msg(MSH('PHI-6', 'ADT^A08'), `PID|1||||${PHI.family}^${PHI.given}||${PHI.birth}`),
        ),
        wrongType: await c.send(msg(MSH('PHI-7', 'SIU^S12'), PID('M1'))),
        wrongVersion: await c.send(msg(MSH('PHI-8', 'ADT^A01', '9.9'), PID('M1'))),
        noPid: await c.send(msg(MSH('PHI-9', 'ADT^A01'), `NK1|1|${PHI.family}^${PHI.given}`)),
        garbage: await c.send(`${PHI.family} ${PHI.given} ${PHI.birth} ${PHI.street}`),
      };
      expect(
        Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, ackField(a, 'MSA', 1)])),
      ).toEqual({
        register: 'AA',
        resend: 'AA',
        update: 'AA',
        result: 'AA',
        lookalike: 'AA',
        merge: 'AA',
        noPatientId: 'AA',
        wrongType: 'AR',
        wrongVersion: 'AR',
        noPid: 'AE',
        garbage: 'AR',
      });
    } finally {
      c.close();
    }

    // Everything applied, the A08 dead-lettered by the EHR, billing retried at least once.
    ds = new DataSource({ type: 'postgres', url: db.url, poolSize: 1 });
    await ds.initialize();
    const count = async (sql: string) => Number((await ds!.query(sql))[0].n);
    await waitFor(
      'every message applied, the A08 dead-lettered, billing retried',
      async () =>
        (await count(`SELECT count(*) AS n FROM message WHERE status = 'received'`)) === 0 &&
        (await count(
          `SELECT count(*) AS n FROM delivery WHERE destination = 'ehr' AND status = 'dead'`,
        )) > 0 &&
        (await count(
          `SELECT count(*) AS n FROM delivery WHERE destination = 'billing' AND attempts > 0`,
        )) > 0
          ? true
          : undefined,
      60_000,
    );
    expect(await count(`SELECT count(*) AS n FROM message WHERE status = 'error'`)).toBeGreaterThan(
      0,
    );

    // Reads of patient data through the API (searches by name and birth date, records, raw).
    const [person] = await ds.query(`SELECT euid FROM mpi_person WHERE status = 'active' LIMIT 1`);
    const [raw] = await ds.query(`SELECT id FROM message WHERE control_id = 'PHI-1'`);
    for (const path of [
      `/api/patients?family=${PHI.family}&given=${PHI.given}&birthDate=${PHI.birthIso}`,
      `/api/patients?birthDate=not-a-date-${PHI.family}`,
      `/api/patients/${person.euid as string}`,
      `/api/messages/${raw.id as string}`,
      `/api/messages?controlId=PHI-1`,
    ]) {
      expect((await api(path)).status).toBeLessThan(500);
    }

    engine.kill('SIGTERM');
    await new Promise((r) => engine!.once('close', r));
    engine = undefined;

    // The output is real log output of those paths (so the search below can fail)...
    expect(output).toContain('rejected: UNSUPPORTED_TYPE');
    expect(output).toContain('MISSING_PATIENT_ID');
    expect(output).toMatch(/"path":"\/api\/patients"/);
    // ... and holds none of the patient's data, nor a raw segment.
    for (const [what, value] of Object.entries(PHI)) {
      expect({ what, found: output.includes(value) }).toEqual({ what, found: false });
    }
    expect(output).not.toMatch(/PID\|/);
    expect(output).not.toMatch(/OBX\|/);
  });
});
