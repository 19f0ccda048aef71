import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMessage, splitMessages } from '@engine/hl7';
import { MessageRepository } from '@engine/store';
import { startTestEngine, type TestEngine } from './support/engine';
import { ackField, TestMllpClient } from './support/mllp-client';

const SAMPLES = join(__dirname, '../../shared/samples/hl7');

/**
 * Samples the default feed (ADT^*, ORU^R01) must not accept, with the reason. Every other
 * sample is ADT or ORU^R01 with a control id and its required segments, and must be accepted.
 */
const REJECTED: Record<string, { ack: 'R' | 'E'; err: number }> = {
  'hl7apy_adt_a01_v26_msh_only.hl7': { ack: 'E', err: 100 }, // no PID
  'nodehl7_adt_a01_v27_msh_only.hl7': { ack: 'E', err: 100 }, // no PID
  'hl7dn_adt_a04_v27_blank_line.hl7': { ack: 'E', err: 100 }, // MSH + EVN only
  'hl7dn_adt_a04_v27_explicit_null.hl7': { ack: 'E', err: 100 },
  'hl7dn_adt_a04_v27_tab_chars.hl7': { ack: 'E', err: 100 },
  'hl7dn_adt_a08_v24_zsegment_invalid_escape.hl7': { ack: 'E', err: 100 }, // MSH + ZZ1 only
  'nhc_oru_r01_v251_athena_lri.hl7': { ack: 'E', err: 100 }, // no OBX
  'pyhl7_oru_r01_rep_subcomponent_minimal.hl7': { ack: 'E', err: 100 }, // no OBR/OBX
  'hl7dn_oru_r01_v24_no_control_id.hl7': { ack: 'R', err: 101 }, // MSH-10 empty
  'nodehl7_adt_a03_v25fra_ins.hl7': { ack: 'R', err: 101 }, // MSH-10 empty
};

/** The 0357 code of an ERR segment, in either shape (ERR-3 from 2.5, ERR-1 before). */
function errCode(ack: string): number {
  const v25 = /^(\d+)\^/.exec(ackField(ack, 'ERR', 3));
  const old = /\^(\d+)&/.exec(ackField(ack, 'ERR', 1));
  return Number(v25?.[1] ?? old?.[1] ?? NaN);
}

describe('every sample message through the gateway', () => {
  let engine: TestEngine;
  let client: TestMllpClient;
  beforeAll(async () => {
    engine = await startTestEngine({ roles: ['gateway'] });
    client = await TestMllpClient.connect(engine.port());
  });
  afterAll(async () => {
    client.close();
    await engine.close();
  });

  const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.hl7'));
  it.each(files)('%s gets the right ACK and is kept', async (file) => {
    const repo = engine.app.get(MessageRepository);
    for (const payload of splitMessages(readFileSync(join(SAMPLES, file)))) {
      const msg = parseMessage(payload);
      const ack = await client.send(payload);
      expect(ackField(ack, 'MSA', 2)).toBe(msg.controlId);
      const code = ackField(ack, 'MSA', 1);
      const typeOk =
        msg.messageType === 'ADT' || (msg.messageType === 'ORU' && msg.triggerEvent === 'R01');
      const expected = REJECTED[file];
      if (!typeOk) {
        // A type the feed does not accept: 200; a known type with an event it does not: 201.
        expect(code).toMatch(/^[AC]R$/);
        expect(errCode(ack)).toBe(msg.messageType === 'ORU' ? 201 : 200);
      } else if (expected) {
        expect(code).toMatch(new RegExp(`^[AC]${expected.ack}$`));
        expect(errCode(ack)).toBe(expected.err);
      } else {
        expect(code).toMatch(/^[AC]A$/);
      }
      if (msg.controlId !== '') {
        const rows = (await repo.search({ controlId: msg.controlId, limit: 10 })).items;
        expect(rows.length).toBeGreaterThanOrEqual(1);
        const stored = await repo.findById(rows[0].id);
        expect(stored!.raw.equals(payload)).toBe(true);
        expect(stored!.status).toBe(code.endsWith('A') ? 'received' : 'rejected');
      }
    }
  });
});
