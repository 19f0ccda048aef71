import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { SurvivorshipConfig } from '@engine/config';
import { parseMessage } from '@engine/hl7';
import { isAdtOru, readManifest, sampleMessage } from '@engine/hl7/testing';
import {
  DeterministicIdentityResolver,
  EVENT_TYPES,
  type EventRow,
  WorkingSet,
  applyMessage,
  collectPrefetch,
  decideTask,
  emptyPrefetch,
  linkRecord,
  mergePersons,
  normalizeMessage,
  unmerge,
} from '@engine/mpi';
import type { RenderInput, SourceEvent, SourceMessage } from '../types';
import { renderHl7 } from './hl7';
import {
  EVENT_SCHEMA_URL,
  type EventEnvelope,
  JSON_CONTENT_TYPE,
  buildEnvelope,
  messageEventType,
  renderJson,
} from './json';
import { RENDER_OPTIONS, messageDelivery, sourceMessage } from './testing';

const adtOru = readManifest().filter(isAdtOru);

const schema = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../../schemas/event.v1.json'), 'utf8'),
) as Record<string, unknown>;
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);

function expectValid(body: Buffer): EventEnvelope {
  const doc: unknown = JSON.parse(body.toString('utf8'));
  const type = (doc as { type?: unknown }).type;
  if (!validate(doc)) {
    throw new Error(`${String(type)}: ${ajv.errorsText(validate.errors, { separator: '\n' })}`);
  }
  return doc as EventEnvelope;
}

/** The envelope of a sample file's (first) message, valid against the schema. */
function sampleEnvelope(file: string, euid: string | null = 'E-1'): EventEnvelope {
  return expectValid(renderJson(messageDelivery(sampleMessage(file), euid), RENDER_OPTIONS).body);
}

describe('renderJson: message deliveries', () => {
  it('has the sample ADT and ORU messages', () => {
    expect(adtOru.length).toBeGreaterThanOrEqual(30);
  });

  it.each(adtOru)('$file: valid against event.v1.json', ({ file }) => {
    const raw = sampleMessage(file);
    const input = messageDelivery(raw, 'E-1');
    const out = renderJson(input, RENDER_OPTIONS);
    expect(out.contentType).toBe(JSON_CONTENT_TYPE);
    expect(out.extension).toBe('json');
    expect(out.controlId).toBeUndefined();
    const doc = expectValid(out.body);
    const msg = parseMessage(raw);
    expect(doc.schema).toBe(EVENT_SCHEMA_URL);
    expect(doc.version).toBe(1);
    expect(doc.id).toBe('msg:7');
    expect(doc.type).toMatch(new RegExp(`^hl7\\.${msg.messageType}(_|$)`));
    expect(doc.occurredAt).toBe('2024-05-01T10:00:00.000Z');
    expect(doc.euid).toBe('E-1');
    expect(doc.source.feed).toBe('adt-main');
    expect(doc.source.messageId).toBe('7');
    expect(doc.source.controlId).toBe(msg.controlId === '' ? null : msg.controlId);
    expect(doc.source.messageType).toBe(msg.messageType);
    // the data is the canonical model, as JSON
    expect(doc.data).toEqual(JSON.parse(JSON.stringify(normalizeMessage(msg))));
    // deterministic
    expect(renderJson(input, RENDER_OPTIONS).body.equals(out.body)).toBe(true);
  });

  it('carries patient, encounter and merge of an A40', () => {
    const doc = sampleEnvelope('emap_adt_a40_v24_mrg.hl7');
    expect(doc.type).toBe('hl7.ADT_A40');
    expect(doc.source).toEqual({
      feed: 'adt-main',
      messageId: '7',
      controlId: 'PPPPP111111111111111',
      messageType: 'ADT',
      trigger: 'A40',
      sendingApplication: 'UCLH4',
      sendingFacility: 'RRV03',
    });
    const data = doc.data as { patient: { mrn: string }; merge: { priorMrn: string } };
    expect(data.patient.mrn).toBe('40800001');
    expect(data.merge.priorMrn).toBe('40800000');
  });

  it('carries results of an ORU, dates as ISO strings', () => {
    const doc = sampleEnvelope('nhc_oru_r01_v251_nist_elr_lead.hl7');
    expect(doc.type).toBe('hl7.ORU_R01');
    const data = doc.data as {
      results: Array<{
        observations: Array<{ value: { kind: string } }>;
        observedAt?: { value: string };
      }>;
    };
    expect(data.results.length).toBeGreaterThan(0);
    expect(data.results[0].observations[0].value.kind).toBe('number');
    expect(data.results[0].observedAt?.value).toMatch(/^\d{4}-\d{2}-\d{2}/);
  });

  it('validates other message types (event only) and a message without EUID', () => {
    for (const file of ['nhc_mfn_m02_v231_belgian_8859.hl7', 'medplum_ack_261_trailing.hl7']) {
      const doc = sampleEnvelope(file, null);
      expect(doc.euid).toBeNull();
      expect((doc.data as { supported: boolean }).supported).toBe(false);
    }
    const noTrigger = sampleEnvelope('medplum_adt_v21_no_trigger.hl7');
    expect(noTrigger.type).toBe('hl7.ADT');
  });

  it('names message types with letters and digits only', () => {
    expect(messageEventType('ADT', 'A01')).toBe('hl7.ADT_A01');
    expect(messageEventType('oru', '')).toBe('hl7.ORU');
    expect(messageEventType('', '')).toBe('hl7.UNKNOWN');
    expect(messageEventType('Z-X', 'A 1')).toBe('hl7.ZX_A1');
  });

  it('fails with BAD_INPUT without a message', () => {
    expect(() =>
      renderJson({ deliveryId: '1', kind: 'message', euid: null }, RENDER_OPTIONS),
    ).toThrow(expect.objectContaining({ code: 'BAD_INPUT' }));
  });
});

// ---- events produced by libs/mpi ---------------------------------------------------------

const SURVIVORSHIP: SurvivorshipConfig = {
  default: 'mostRecent',
  trustedAuthorities: [],
  fields: {},
};

/** The MPI in memory: libs/mpi apply and operations over one working set, every row loaded. */
class MemoryMpi {
  readonly ws = new WorkingSet();
  private n = 0;
  readonly now = new Date('2024-05-01T10:00:00.000Z');
  private readonly identity = new DeterministicIdentityResolver();
  readonly newId = (): string => `id${String(++this.n).padStart(4, '0')}`;

  private prepare(): void {
    for (const euid of this.ws.persons.keys()) {
      this.ws.markPersonComplete(euid);
    }
    for (const id of this.ws.records.keys()) {
      this.ws.markChildrenLoaded(id);
    }
  }

  apply(raw: Buffer | string, messageId: string): void {
    const normalized = normalizeMessage(parseMessage(raw));
    const keys = emptyPrefetch();
    collectPrefetch(normalized, this.identity, keys);
    keys.records.forEach(([authority, mrn]) => this.ws.markKeyLoaded(authority, mrn));
    this.prepare();
    applyMessage(
      {
        ws: this.ws,
        now: this.now,
        newId: this.newId,
        identity: this.identity,
        survivorship: SURVIVORSHIP,
        resultsUpdateDemographics: false,
      },
      normalized,
      { messageId, receivedAt: this.now },
    );
  }

  operation<T>(fn: (ctx: Parameters<typeof mergePersons>[0]) => T): T {
    this.prepare();
    return fn({
      ws: this.ws,
      now: this.now,
      newId: this.newId,
      actor: 'mrt.user',
      reason: 'worklist review',
      survivorship: SURVIVORSHIP,
    });
  }

  euidOf(authority: string, mrn: string): string {
    const r = this.ws.recordByKeyIfLoaded(authority, mrn);
    if (r === undefined) {
      throw new Error(`no record ${authority}/${mrn}`);
    }
    return r.personEuid;
  }
}

/** Fictitious patients only. */
function adt(trigger: string, id: string, segments: string[]): string {
  return (
    [
      `MSH|^~\\&|REG|NORTH|ENGINE|MPI|20240301120000||ADT^${trigger}|${id}|P|2.5.1`,
      `EVN|${trigger}|20240301120000`,
      ...segments,
    ].join('\r') + '\r'
  );
}

function oru(id: string, status: string, value: string): string {
  return (
    [
      `MSH|^~\\&|LAB|NORTH|ENGINE|MPI|20240301130000||ORU^R01^ORU_R01|${id}|P|2.5.1`,
      pid(1, 'N1', 'ALPHA', 'ANNE'),
      `OBR|1||F100^LAB|2345-7^Glucose^LN|||20240301110000|||||||||||||||20240301120000|||${status}`,
      `OBX|1|NM|2345-7^Glucose^LN||${value}|mg/dL^^UCUM|70-99||||${status}`,
    ].join('\r') + '\r'
  );
}

function pid(setId: number, mrn: string, family: string, given: string, auth = 'NORTH'): string {
  return `PID|${setId}||${mrn}^^^${auth}^MR||${family}^${given}||19700101|F|||1 ELM ST^^TOWN^ST^11111^USA^H||5550100`;
}

/** Runs messages and worklist operations; returns the events raised (as stored: JSON). */
function produceEvents(): { events: SourceEvent[]; messages: Map<string, SourceMessage> } {
  const mpi = new MemoryMpi();
  const messages = new Map<string, SourceMessage>();
  let seq = 100;
  const run = (raw: Buffer | string): void => {
    const id = String(++seq);
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    messages.set(id, sourceMessage(bytes, id));
    mpi.apply(bytes, id);
  };
  // every ADT/ORU sample, in file-name order (the EMAP A17 creates two patients, the A40
  // merges one of them, the A29 deletes one, the A47 re-keys one)
  for (const { file } of adtOru) {
    if (parseMessage(sampleMessage(file)).hasSegment('PID')) {
      run(sampleMessage(file));
    }
  }
  // synthetic messages for what the samples do not raise
  run(adt('A04', 'S1', [pid(1, 'N1', 'ALPHA', 'ANN'), 'PV1|1|O|CLINIC||||||||||||||||V1']));
  run(adt('A08', 'S2', [pid(1, 'N1', 'ALPHA', 'ANNE'), 'PV1|1|I|WARD1||||||||||||||||V1']));
  run(adt('A04', 'S3', [pid(1, 'N2', 'BETA', 'BOB')]));
  run(adt('A04', 'S4', [pid(1, 'S2', 'BETA', 'BOB', 'SOUTH')]));
  run(adt('A24', 'S5', [pid(1, 'N2', 'BETA', 'BOB'), pid(2, 'S2', 'BETA', 'BOB', 'SOUTH')]));
  run(adt('A37', 'S6', [pid(1, 'N2', 'BETA', 'BOB'), pid(2, 'S2', 'BETA', 'BOB', 'SOUTH')]));
  run(
    adt('A41', 'S7', ['PID|1||N1^^^NORTH^MR||ALPHA^ANNE|||||||||||||ACC2', 'MRG|N1^^^NORTH||ACC1']),
  );
  run(adt('A23', 'S12', [pid(1, 'N1', 'ALPHA', 'ANNE'), 'PV1|1|I|WARD1||||||||||||||||V1']));
  run(oru('R1', 'F', '95'));
  run(oru('R2', 'F', '96'));
  run(oru('R3', 'C', '97'));
  run(adt('A29', 'S13', [pid(1, 'N2', 'BETA', 'BOB')]));
  run(adt('A04', 'S8', [pid(1, 'N3', 'GAMMA', 'GUS')]));
  run(adt('A04', 'S9', [pid(1, 'N4', 'DELTA', 'DOT')]));
  run(adt('A04', 'S10', [pid(1, 'N5', 'EPSILON', 'EVE')]));
  run(adt('A04', 'S11', [pid(1, 'N6', 'ZETA', 'ZOE')]));
  // worklist decisions: merge, unmerge, link, not-duplicate
  const e3 = mpi.euidOf('NORTH', 'N3');
  const e4 = mpi.euidOf('NORTH', 'N4');
  mpi.operation((ctx) => mergePersons(ctx, e3, e4, 'task-1'));
  const history = mpi.ws.history.filter((h) => h.kind === 'merge').at(-1)!;
  mpi.operation((ctx) => unmerge(ctx, history));
  const e5 = mpi.euidOf('NORTH', 'N5');
  const n6 = mpi.ws.recordByKeyIfLoaded('NORTH', 'N6')!;
  mpi.operation((ctx) => linkRecord(ctx, e5, n6.id, 'task-2'));
  mpi.operation((ctx) =>
    decideTask(
      ctx,
      {
        id: 'task-3',
        leftRecordId: n6.id,
        rightRecordId: mpi.ws.recordByKeyIfLoaded('NORTH', 'N1')!.id,
        leftEuid: e5,
        rightEuid: mpi.euidOf('NORTH', 'N1'),
        status: 'open',
      },
      'not-duplicate',
    ),
  );
  const rows: EventRow[] = mpi.ws.events;
  const events = rows.map((e, i): SourceEvent => ({
    key: `mpi-event-${i + 1}`,
    type: e.type,
    euid: e.euid,
    messageId: e.messageId,
    // as read back from the outbox (JSON)
    payload: JSON.parse(JSON.stringify(e.payload)) as Record<string, unknown>,
    createdAt: e.createdAt,
  }));
  return { events, messages };
}

describe('renderJson: event deliveries (events raised by libs/mpi)', () => {
  const { events, messages } = produceEvents();
  const input = (e: SourceEvent): RenderInput => ({
    deliveryId: `d-${e.key}`,
    kind: 'event',
    event: e,
    message: e.messageId === null ? undefined : messages.get(e.messageId),
    euid: null,
  });

  it('raises the event types this test covers', () => {
    const types = new Set(events.map((e) => e.type));
    const missing = EVENT_TYPES.filter((t) => !types.has(t));
    // duplicate.suspected needs probabilistic matching, encounter.merged an A42 with a
    // prior visit: both are covered with hand-written payloads below
    expect(missing.sort()).toEqual(['duplicate.suspected', 'encounter.merged']);
  });

  it('renders every event valid against event.v1.json', () => {
    for (const e of events) {
      const out = renderJson(input(e), RENDER_OPTIONS);
      const doc = expectValid(out.body);
      expect(doc.id).toBe(e.key);
      expect(doc.type).toBe(e.type);
      expect(doc.euid).toBe(e.euid);
      expect(doc.occurredAt).toBe(e.createdAt.toISOString());
      expect(doc.data).toEqual(e.payload);
      expect(renderJson(input(e), RENDER_OPTIONS).body.equals(out.body)).toBe(true);
    }
  });

  it('fills source from the message an event came from, nulls for decisions', () => {
    const fromMessage = events.find((e) => e.type === 'patient.merged' && e.messageId !== null)!;
    const doc = buildEnvelope(input(fromMessage));
    expect(doc.source).toEqual({
      feed: 'adt-main',
      messageId: fromMessage.messageId,
      controlId: 'PPPPP111111111111111',
      messageType: 'ADT',
      trigger: 'A40',
      sendingApplication: 'UCLH4',
      sendingFacility: 'RRV03',
    });
    const decision = events.find((e) => e.type === 'patient.merged' && e.messageId === null)!;
    expect(buildEnvelope(input(decision)).source).toEqual({
      feed: null,
      messageId: null,
      controlId: null,
      messageType: null,
      trigger: null,
      sendingApplication: null,
      sendingFacility: null,
    });
    // the message not supplied: only its id is known
    const bare = buildEnvelope({ ...input(fromMessage), message: undefined });
    expect(bare.source.messageId).toBe(fromMessage.messageId);
    expect(bare.source.controlId).toBeNull();
  });

  it('carries euid, retiredEuid and the identifiers of both merge shapes', () => {
    const merges = events.filter((e) => e.type === 'patient.merged');
    const fromMessage = buildEnvelope(input(merges.find((e) => e.messageId !== null)!));
    expect(fromMessage.data).toMatchObject({
      euid: fromMessage.euid,
      retiredEuid: expect.any(String),
      survivor: { authority: 'MRENTR', mrn: '40800001' },
      retired: { authority: 'MRENTR', mrn: '40800000' },
      trigger: 'A40',
    });
    const fromDecision = buildEnvelope(input(merges.find((e) => e.messageId === null)!));
    expect(fromDecision.data).toMatchObject({
      euid: fromDecision.euid,
      retiredEuid: expect.any(String),
      records: [{ authority: 'NORTH', mrn: 'N4' }],
      taskId: 'task-1',
      actor: 'mrt.user',
    });
  });

  it('builds ADT^A40 from both merge shapes raised by libs/mpi', () => {
    const merges = events.filter((e) => e.type === 'patient.merged');
    for (const e of merges) {
      const out = renderHl7(input(e), RENDER_OPTIONS)!;
      const msg = parseMessage(out.body);
      const p = e.payload as { euid: string; retiredEuid?: string; survivor?: { mrn: string } };
      expect(msg.get('MSH-9')).toBe('ADT^A40^ADT_A39');
      expect(msg.getAll('PID-3.1').at(-1)).toBe(p.euid);
      expect(msg.getAll('MRG-1.1')).toContain(p.retiredEuid);
      if (p.survivor) {
        expect(msg.getAll('PID-3.1')).toEqual([p.survivor.mrn, p.euid]);
        expect(msg.get('MRG-1.1')).toBe('40800000');
      }
    }
  });

  it('builds HL7 for the five patient event types and nothing for the others', () => {
    const withHl7 = new Set([
      'patient.merged',
      'patient.linked',
      'patient.unlinked',
      'patient.created',
      'patient.updated',
    ]);
    for (const e of events) {
      const out = renderHl7(input(e), RENDER_OPTIONS);
      if (!withHl7.has(e.type)) {
        expect(out).toBeNull();
        continue;
      }
      const msg = parseMessage(out!.body);
      expect(msg.get('EVN-1')).toBe(msg.triggerEvent);
      expect(msg.getAll('PID-3.1')).toContain(e.euid);
      expect(out!.controlId!.length).toBeLessThanOrEqual(20);
    }
  });

  it('sorts payload keys: the bytes do not depend on how the store kept the JSON', () => {
    const e = events.find((x) => x.type === 'patient.created')!;
    const reversed = Object.fromEntries(Object.entries(e.payload).reverse());
    const a = renderJson(input(e), RENDER_OPTIONS).body;
    const b = renderJson(input({ ...e, payload: reversed }), RENDER_OPTIONS).body;
    expect(a.equals(b)).toBe(true);
  });
});

describe('renderJson: hand-written event payloads', () => {
  const at = new Date('2024-05-01T10:00:00.000Z');
  const ev = (type: string, payload: Record<string, unknown>): RenderInput => ({
    deliveryId: '1',
    kind: 'event',
    event: { key: `k-${type}`, type, euid: 'E1', messageId: null, payload, createdAt: at },
    euid: null,
  });

  it.each([
    [
      'duplicate.suspected',
      { euid: 'E1', candidates: [{ euid: 'E2', score: 0.91 }], messageId: '1' },
    ],
    [
      'encounter.merged',
      {
        euid: 'E1',
        encounterId: 'enc1',
        visitNumber: 'V2',
        priorVisitNumber: 'V1',
        status: 'merged',
        record: { authority: 'H', mrn: 'M1' },
        trigger: 'A42',
      },
    ],
    [
      'result.corrected',
      {
        euid: 'E1',
        resultId: 'r1',
        orderKey: 'F:LAB|1',
        status: 'C',
        testCode: { code: '5671-3', system: 'LOINC' },
        record: { authority: 'H', mrn: 'M1' },
      },
    ],
    ['custom.future', { anything: true }],
  ])('%s is valid', (type, payload) => {
    const doc = expectValid(renderJson(ev(type, payload), RENDER_OPTIONS).body);
    expect(doc.data).toEqual(payload);
  });

  it('writes Dates as ISO strings and drops undefined', () => {
    const doc = buildEnvelope(
      ev('patient.unmerged', {
        euid: 'E1',
        restoredEuid: 'E2',
        historyId: 'h1',
        at: new Date('2024-01-02T03:04:05.000Z'),
        gone: undefined,
      }),
    );
    expect(doc.data).toEqual({
      at: '2024-01-02T03:04:05.000Z',
      euid: 'E1',
      historyId: 'h1',
      restoredEuid: 'E2',
    });
  });

  it('rejects envelopes the schema does not describe', () => {
    const good = buildEnvelope(
      ev('patient.merged', {
        euid: 'E1',
        survivor: { authority: 'H', mrn: 'M2' },
        retired: { authority: 'H', mrn: 'M1' },
        messageId: '9',
        trigger: 'A40',
      }),
    );
    expect(validate(good)).toBe(true);
    const bad = (patch: (d: Record<string, unknown>) => void): boolean => {
      const copy = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
      patch(copy);
      return validate(copy);
    };
    expect(bad((d) => (d.extra = 1))).toBe(false);
    expect(bad((d) => (d.version = 2))).toBe(false);
    expect(bad((d) => (d.occurredAt = 'yesterday'))).toBe(false);
    expect(bad((d) => delete (d.data as Record<string, unknown>).euid)).toBe(false);
    expect(bad((d) => delete (d.data as Record<string, unknown>).retired)).toBe(false);
    expect(bad((d) => ((d.data as Record<string, unknown>).futureField = 'ok'))).toBe(true);
    expect(bad((d) => (d.type = 'Patient Merged'))).toBe(false);
  });
});
