import { type Hl7Message, parseMessage } from '@engine/hl7';
import { readManifest, sampleMessage } from '@engine/hl7/testing';
import type { RenderOptions, SourceEvent } from '../types';
import {
  HL7_CONTENT_TYPE,
  buildEventMessage,
  dateValueToHl7,
  eventControlId,
  formatHl7Utc,
  renderHl7,
} from './hl7';
import { TransformError } from './rules';
import { RENDER_OPTIONS, messageDelivery } from './testing';

const sampleFiles = readManifest().map((r) => r.file);

function render(raw: Buffer, euid: string | null, opts: Partial<RenderOptions> = {}) {
  const out = renderHl7(messageDelivery(raw, euid), { ...RENDER_OPTIONS, ...opts });
  if (out === null) {
    throw new Error('message deliveries always render');
  }
  return out;
}

describe('renderHl7: message deliveries', () => {
  it('reads the sample corpus', () => {
    expect(sampleFiles.length).toBeGreaterThanOrEqual(50);
  });

  describe.each(sampleFiles)('%s', (file) => {
    const raw = sampleMessage(file);

    it('re-emits the message byte for byte when nothing changes it', () => {
      for (const out of [render(raw, null), render(raw, 'E1', { addEuid: false })]) {
        expect(out.body.equals(raw)).toBe(true);
        expect(out.contentType).toBe(HL7_CONTENT_TYPE);
        expect(out.extension).toBe('hl7');
        expect(out.controlId).toBe(parseMessage(raw).controlId);
      }
    });

    it('adds the EUID as the last PID-3 repetition of the first PID, in the same charset', () => {
      const before = parseMessage(raw);
      const out = render(raw, 'E0001');
      const after = parseMessage(out.body);
      expect(after.encoding).toBe(before.encoding);
      expect(after.characterSet).toBe(before.characterSet);
      expect(after.controlId).toBe(before.controlId);
      expect(out.controlId).toBe(before.controlId);
      expect(after.segments().map((s) => s.name)).toEqual(before.segments().map((s) => s.name));
      const pid = before.segment('PID');
      if (pid === undefined) {
        expect(out.body.equals(raw)).toBe(true);
        return;
      }
      const ids = pid.getAll(3);
      expect(after.getAll('PID-3')).toEqual([...ids, 'E0001^^^EUID^PI']);
      if (ids.length > 0) {
        expect(after.get('PID-3')).toBe(ids[0]); // the MRN stays first
      }
      // every other segment is unchanged
      const others = (m: Hl7Message) =>
        m
          .segments()
          .filter((s) => s !== m.segment('PID'))
          .map((s) => s.toString());
      expect(others(after)).toEqual(others(before));
      expect(out.body.includes(Buffer.from('\n'))).toBe(false);
    });
  });

  it('keeps ISO-8859-1 (MSH-18 8859/1) when adding the EUID', () => {
    const raw = sampleMessage('nodehl7_adt_a08_v24_dutch_8859_glued_segments.hl7');
    const out = render(raw, 'E42');
    expect(out.body.includes(Buffer.from([0xeb]))).toBe(true); // ë, one byte
    expect(out.body.includes(Buffer.from('ë', 'utf8'))).toBe(false);
    const after = parseMessage(out.body);
    expect(after.encoding).toBe('latin1');
    expect(after.get('MSH-18')).toBe('8859/1');
    expect(after.get('PID-5.1.1')).toBe('van Testpatiënt-van het Hek');
    expect(after.getAll('PID-3.1').at(-1)).toBe('E42');
    expect(after.get('PID-3.1')).toBe(parseMessage(raw).get('PID-3.1'));
  });

  it('keeps windows-1252 for a message without MSH-18 whose bytes are not UTF-8', () => {
    const raw = Buffer.concat([
      Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.4\rPID|1||M1^^^H^MR||Ren'),
      Buffer.from([0xe9]),
      Buffer.from('^Jo\r'),
    ]);
    const out = render(raw, 'E9');
    expect(out.body.includes(Buffer.from([0xe9]))).toBe(true);
    expect(parseMessage(out.body).get('PID-5.1')).toBe('René');
  });

  it('uses the feed default charset when MSH-18 is empty', () => {
    const raw = Buffer.from(
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.4\rPID|1||M1||Zoë\r',
      'latin1',
    );
    const input = messageDelivery(raw, 'E1');
    input.message = { ...input.message!, defaultCharset: 'ISO-8859-1' };
    const out = renderHl7(input, RENDER_OPTIONS)!;
    expect(out.body.includes(Buffer.from([0xeb]))).toBe(true);
    expect(parseMessage(out.body, { defaultCharset: 'ISO-8859-1' }).get('PID-5')).toBe('Zoë');
  });

  it('does not add an EUID the message already carries', () => {
    const raw = Buffer.from(
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\rPID|1||M1^^^H^MR~E5^^^EUID^PI||DOE\r',
    );
    expect(render(raw, 'E5').body.equals(raw)).toBe(true);
    const other = parseMessage(render(raw, 'E5', { euidAuthority: 'OTHER' }).body);
    expect(other.getAll('PID-3.1')).toEqual(['M1', 'E5', 'E5']);
  });

  it('adds the EUID to the first PID only (A17 carries two)', () => {
    const raw = sampleMessage('emap_adt_a17_v24_swap_two_patients_zpd.hl7');
    const after = parseMessage(render(raw, 'E17').body);
    const [first, second] = after.segments('PID');
    expect(first.getAll('3.1').at(-1)).toBe('E17');
    expect(second.getAll('3.1')).not.toContain('E17');
  });

  it('escapes an EUID and authority containing separators', () => {
    const raw = Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\rPID|1||M1||DOE\r');
    const after = parseMessage(render(raw, 'E^1', { euidAuthority: 'MPI&X' }).body);
    expect(after.get('PID-3[2].1')).toBe('E^1');
    expect(after.get('PID-3[2].4')).toBe('MPI&X');
    expect(after.get('PID-3[2].5')).toBe('PI');
  });

  it('re-serializes an edited message with \\r segment separators', () => {
    const raw = Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\nPID|1||M1||DOE\n');
    expect(render(raw, 'E1').body.toString()).toBe(
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\rPID|1||M1~E1^^^EUID^PI||DOE\r',
    );
  });

  it('applies rules after the EUID, and reports MSH-10 after them', () => {
    const raw = sampleMessage('emap_adt_a40_v24_mrg.hl7');
    const out = render(raw, 'E40', {
      rules: [
        { set: 'MSH-5', value: 'EHR' },
        { set: 'MSH-10', value: 'OUT-1' },
        { copy: 'PID-3[3].1', to: 'PID-2' },
        { delete: 'PID-3[2]' },
        { map: 'MSH-4', table: 'sites', default: 'UNKNOWN' },
      ],
      tables: { sites: { RRV03: 'UCLH' } },
    });
    const after = parseMessage(out.body);
    expect(out.controlId).toBe('OUT-1');
    expect(after.get('MSH-5')).toBe('EHR');
    expect(after.get('MSH-4')).toBe('UCLH');
    expect(after.get('PID-2')).toBe('E40');
    expect(after.getAll('PID-3.1')).toEqual(['40800001', 'E40']);
    expect(after.get('MRG-1')).toBe('40800000^^^MRENTR');
  });

  it('transcodes when a rule changes MSH-18', () => {
    const raw = sampleMessage('nodehl7_adt_a08_v24_dutch_8859_glued_segments.hl7');
    const out = render(raw, null, { rules: [{ set: 'MSH-18', value: 'UNICODE UTF-8' }] });
    expect(out.body.includes(Buffer.from('ë', 'utf8'))).toBe(true);
    expect(parseMessage(out.body).get('PID-5.1.1')).toBe('van Testpatiënt-van het Hek');
    expect(() => render(raw, null, { rules: [{ set: 'MSH-18', value: 'KLINGON' }] })).toThrow(
      TransformError,
    );
  });

  it('fails with BAD_RULE on a bad rule and BAD_INPUT without a message', () => {
    const raw = sampleMessage('emap_adt_a40_v24_mrg.hl7');
    expect(() => render(raw, null, { rules: [{ set: 'PID-x', value: '' }] })).toThrow(
      expect.objectContaining({ code: 'BAD_RULE' }),
    );
    expect(() =>
      renderHl7({ deliveryId: '1', kind: 'message', euid: null }, RENDER_OPTIONS),
    ).toThrow(expect.objectContaining({ code: 'BAD_INPUT' }));
    expect(() => render(Buffer.from('not hl7'), 'E1')).toThrow(
      expect.objectContaining({ code: 'BAD_INPUT', message: 'message 7 does not parse (NO_MSH)' }),
    );
  });
});

// ---- event deliveries ------------------------------------------------------------------

const CREATED_AT = new Date('2024-05-01T10:15:30.123Z');

function event(type: string, payload: Record<string, unknown>, euid = 'E-SURV'): SourceEvent {
  return {
    key: `evt-${type}`,
    type,
    euid,
    messageId: typeof payload.messageId === 'string' ? payload.messageId : null,
    payload,
    createdAt: CREATED_AT,
  };
}

function renderEvent(e: SourceEvent, opts: Partial<RenderOptions> = {}, deliveryId = '1001') {
  return renderHl7(
    { deliveryId, kind: 'event', event: e, euid: null },
    { ...RENDER_OPTIONS, ...opts },
  );
}

function parsed(e: SourceEvent, opts: Partial<RenderOptions> = {}): Hl7Message {
  const out = renderEvent(e, opts);
  if (out === null) {
    throw new Error(`no HL7 for ${e.type}`);
  }
  return parseMessage(out.body);
}

const GOLDEN = {
  name: { family: "O'Neil^Smith", given: 'Ana', middle: 'B', type: 'L' },
  birthDate: { value: '1980-02-29', precision: 'day' },
  sex: 'F',
  address: { line1: '1 Main St', city: 'Springfield', postalCode: '12345', type: 'H' },
  telecom: [
    { system: 'phone', value: '5551234', use: 'home' },
    { system: 'email', value: 'ana@example.org', use: 'home' },
    { system: 'phone', value: '5559876', use: 'work', extension: '12' },
  ],
  ssn: '123456789',
  race: ['2106-3'],
  language: 'en',
  deceased: { indicator: false },
};

describe('renderHl7: event deliveries', () => {
  it('builds ADT^A40 from a message merge (survivor/retired records)', () => {
    const msg = parsed(
      event('patient.merged', {
        euid: 'E-SURV',
        retiredEuid: 'E-RET',
        survivor: { authority: 'MRENTR', mrn: '40800001' },
        retired: { authority: 'MRENTR', mrn: '40800000' },
        messageId: '55',
        trigger: 'A40',
      }),
    );
    expect(msg.get('MSH-9')).toBe('ADT^A40^ADT_A39');
    expect(msg.get('MSH-3')).toBe('MPI-ENGINE');
    expect(msg.get('MSH-4')).toBe('HOSP');
    expect(msg.get('MSH-7')).toBe('20240501101530+0000');
    expect(msg.get('MSH-10')).toBe('EVT1001');
    expect(msg.get('MSH-12')).toBe('2.5.1');
    expect(msg.get('MSH-18')).toBe('UNICODE UTF-8');
    expect(msg.get('EVN-1')).toBe('A40');
    expect(msg.get('EVN-2')).toBe('20240501101530+0000');
    expect(msg.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'MRG']);
    expect(msg.getAll('PID-3')).toEqual(['40800001^^^MRENTR^MR', 'E-SURV^^^EUID^PI']);
    expect(msg.getAll('MRG-1')).toEqual(['40800000^^^MRENTR^MR', 'E-RET^^^EUID^PI']);
  });

  it('builds ADT^A40 from a message merge that retired no person', () => {
    const msg = parsed(
      event('patient.merged', {
        euid: 'E-SURV',
        survivor: { authority: 'H', mrn: 'M2' },
        retired: { authority: 'H', mrn: 'M1' },
        messageId: '56',
        trigger: 'A40',
      }),
    );
    expect(msg.getAll('PID-3')).toEqual(['M2^^^H^MR', 'E-SURV^^^EUID^PI']);
    expect(msg.getAll('MRG-1')).toEqual(['M1^^^H^MR']);
  });

  it('builds ADT^A40 from a worklist merge (persons, golden record)', () => {
    const msg = parsed(
      event('patient.merged', {
        euid: 'E-SURV',
        retiredEuid: 'E-RET',
        golden: GOLDEN,
        records: [{ authority: 'H2', mrn: 'M9' }],
        taskId: 'T1',
        actor: 'mrt.user',
        reason: 'same patient',
      }),
    );
    expect(msg.getAll('PID-3')).toEqual(['E-SURV^^^EUID^PI']);
    expect(msg.getAll('MRG-1')).toEqual(['E-RET^^^EUID^PI']);
    expect(msg.get('PID-5.1')).toBe("O'Neil^Smith");
    expect(msg.get('PID-5.2')).toBe('Ana');
    expect(msg.get('PID-5.7')).toBe('L');
    expect(msg.get('PID-7')).toBe('19800229');
    expect(msg.get('PID-8')).toBe('F');
  });

  it('refuses a merge event without a retired identifier', () => {
    expect(() => renderEvent(event('patient.merged', { euid: 'E-SURV' }))).toThrow(
      expect.objectContaining({ code: 'BAD_INPUT' }),
    );
  });

  it('fills PID from the golden record, escaped, without the SSN', () => {
    const msg = parsed(
      event('patient.updated', {
        euid: 'E-SURV',
        golden: GOLDEN,
        records: [
          { authority: 'H1', mrn: 'M1' },
          { authority: 'H2', mrn: 'M2' },
        ],
        changes: [{ authority: 'H1', mrn: 'M1', fields: ['names'] }],
        messageId: '60',
        trigger: 'A08',
      }),
    );
    expect(msg.get('MSH-9')).toBe('ADT^A31^ADT_A05');
    expect(msg.get('EVN-1')).toBe('A31');
    expect(msg.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'PV1']);
    expect(msg.get('PV1-2')).toBe('N');
    expect(msg.getAll('PID-3')).toEqual(['M1^^^H1^MR', 'M2^^^H2^MR', 'E-SURV^^^EUID^PI']);
    expect(msg.getRaw('PID-5')).toBe("O'Neil\\S\\Smith^Ana^B^^^^L");
    expect(msg.get('PID-11')).toBe('1 Main St^^Springfield^^12345^^H');
    expect(msg.getAll('PID-13')).toEqual(['5551234^PRN^PH', '^NET^Internet^ana@example.org']);
    expect(msg.getAll('PID-14')).toEqual(['5559876^WPN^PH^^^^^12']);
    expect(msg.get('PID-10')).toBe('2106-3');
    expect(msg.get('PID-15')).toBe('en');
    expect(msg.get('PID-30')).toBe('N');
    expect(msg.get('PID-19')).toBe('');
    expect(msg.toString()).not.toContain('123456789');
  });

  it('builds ADT^A28 for patient.created', () => {
    const msg = parsed(
      event('patient.created', {
        euid: 'E-NEW',
        golden: { name: { family: 'Doe', given: 'Jo', type: 'L' } },
        records: [{ authority: 'H1', mrn: 'M1' }],
        messageId: '61',
        trigger: 'A04',
      }),
    );
    expect(msg.get('MSH-9')).toBe('ADT^A28^ADT_A05');
    expect(msg.getAll('PID-3')).toEqual(['M1^^^H1^MR', 'E-NEW^^^EUID^PI']);
    expect(msg.get('PID-5')).toBe('Doe^Jo^^^^^L');
  });

  it('builds ADT^A24 with two PIDs, from a message and from a decision', () => {
    const fromMessage = parsed(
      event('patient.linked', {
        euid: 'E-A',
        linkedEuid: 'E-B',
        records: [
          { authority: 'H1', mrn: 'M1' },
          { authority: 'H2', mrn: 'M2' },
        ],
        messageId: '62',
      }),
    );
    expect(fromMessage.get('MSH-9')).toBe('ADT^A24^ADT_A24');
    const [p1, p2] = fromMessage.segments('PID');
    expect(p1.getAll(3)).toEqual(['M1^^^H1^MR', 'E-A^^^EUID^PI']);
    expect(p2.get(1)).toBe('2');
    expect(p2.getAll(3)).toEqual(['M2^^^H2^MR', 'E-B^^^EUID^PI']);

    const fromDecision = parsed(
      event('patient.linked', {
        euid: 'E-A',
        linkedEuid: 'E-B',
        record: { authority: 'H2', mrn: 'M2' },
        golden: GOLDEN,
        actor: 'mrt.user',
        reason: 'r',
      }),
    );
    const [d1, d2] = fromDecision.segments('PID');
    expect(d1.getAll(3)).toEqual(['E-A^^^EUID^PI']);
    expect(d1.get('5.2')).toBe('Ana');
    expect(d2.getAll(3)).toEqual(['M2^^^H2^MR', 'E-B^^^EUID^PI']);
  });

  it('builds ADT^A37 with two PIDs', () => {
    const msg = parsed(
      event('patient.unlinked', {
        euid: 'E-A',
        unlinkedEuid: 'E-C',
        records: [
          { authority: 'H1', mrn: 'M1' },
          { authority: 'H2', mrn: 'M2' },
        ],
        messageId: '63',
      }),
    );
    expect(msg.get('MSH-9')).toBe('ADT^A37^ADT_A37');
    expect(msg.get('EVN-1')).toBe('A37');
    const [p1, p2] = msg.segments('PID');
    expect(p1.getAll(3)).toEqual(['M1^^^H1^MR', 'E-A^^^EUID^PI']);
    expect(p2.getAll(3)).toEqual(['M2^^^H2^MR', 'E-C^^^EUID^PI']);
  });

  it('returns null for events without an HL7 form', () => {
    for (const type of ['encounter.created', 'result.created', 'duplicate.suspected']) {
      expect(renderEvent(event(type, { euid: 'E' }))).toBeNull();
    }
  });

  it('renders the same bytes on every attempt, in any time zone', () => {
    const e = event('patient.created', {
      euid: 'E-NEW',
      golden: GOLDEN,
      records: [{ authority: 'H1', mrn: 'M1' }],
    });
    const tz = process.env.TZ;
    try {
      process.env.TZ = 'America/New_York';
      const a = renderEvent(e)!;
      process.env.TZ = 'Asia/Tokyo';
      const b = renderEvent(e)!;
      expect(a.body.equals(b.body)).toBe(true);
    } finally {
      if (tz === undefined) {
        delete process.env.TZ;
      } else {
        process.env.TZ = tz;
      }
    }
    const a = renderEvent(e)!;
    expect(a.controlId).toBe('EVT1001');
    expect(a.contentType).toBe(HL7_CONTENT_TYPE);
    expect(a.body.toString()).not.toContain('\n');
  });

  it('applies rules to built messages', () => {
    const msg = parsed(
      event('patient.created', { euid: 'E-NEW', records: [{ authority: 'H1', mrn: 'M1' }] }),
      { rules: [{ set: 'MSH-5', value: 'EHR' }, { delete: 'PV1' }] },
    );
    expect(msg.get('MSH-5')).toBe('EHR');
    expect(msg.hasSegment('PV1')).toBe(false);
  });

  it('builds the message without rules through buildEventMessage', () => {
    const e = event('patient.unlinked', { euid: 'E', unlinkedEuid: 'F', records: [] });
    const msg = buildEventMessage(e, 'x', RENDER_OPTIONS);
    expect(msg?.getAll('PID-3')).toEqual(['E^^^EUID^PI']);
    expect(buildEventMessage(event('patient.deleted', {}), 'x', RENDER_OPTIONS)).toBeNull();
  });
});

describe('helpers', () => {
  it('derives control ids of at most 20 characters from the delivery id', () => {
    expect(eventControlId('12345')).toBe('EVT12345');
    const uuid = '3f1c1f0e-8a4b-4d7e-9a51-0c2b7d9e1a11';
    expect(eventControlId(uuid)).toHaveLength(20);
    expect(eventControlId(uuid)).toBe(eventControlId(uuid));
    expect(eventControlId(uuid)).not.toBe(eventControlId(uuid.replace('3f', '4f')));
    expect(eventControlId('a|b')).toMatch(/^EVT[0-9A-F]{17}$/);
  });

  it('formats times in UTC and normalized dates as HL7', () => {
    expect(formatHl7Utc(new Date('2024-12-31T23:59:59.999Z'))).toBe('20241231235959+0000');
    expect(dateValueToHl7('1962')).toBe('1962');
    expect(dateValueToHl7('1962-03-05')).toBe('19620305');
    expect(dateValueToHl7('2012-07-17T15:25')).toBe('201207171525');
    expect(dateValueToHl7('2012-07-17T15:25:09.746+01:00')).toBe('20120717152509.746+0100');
    expect(dateValueToHl7('2012-07-17T15:25:09Z')).toBe('20120717152509+0000');
    expect(dateValueToHl7('yesterday')).toBeUndefined();
  });
});
