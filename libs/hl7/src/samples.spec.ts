import * as fs from 'node:fs';
import { parseMessage, splitMessages } from './index';
import { SAMPLES_DIR, readManifest, sampleBytes } from './testing';

const manifest = readManifest();

describe('sample corpus (shared/samples/hl7)', () => {
  it('resolves the samples folder and lists every .hl7 file in the manifest', () => {
    expect(fs.statSync(SAMPLES_DIR).isDirectory()).toBe(true); // ../shared beside the project root
    const files = fs.readdirSync(SAMPLES_DIR).filter((f) => f.endsWith('.hl7'));
    expect(files.length).toBeGreaterThanOrEqual(50);
    expect(manifest.map((r) => r.file).sort()).toEqual(files.sort());
  });

  describe.each(manifest)('$file', ({ file, messageType, version }) => {
    const bytes = sampleBytes(file);
    const payloads = splitMessages(bytes);

    it('parses, round-trips byte for byte and matches MSH-9/MSH-12 of the manifest', () => {
      expect(payloads).toHaveLength(1);
      const msg = parseMessage(payloads[0]);
      expect(msg.get('MSH-9')).toBe(messageType);
      expect(msg.get('MSH-12') ?? '').toBe(version);
      expect(msg.toBuffer().equals(payloads[0])).toBe(true);
      if (payloads[0] === bytes) {
        expect(msg.toBuffer().equals(bytes)).toBe(true);
      } else {
        // batch: the message is a slice of the file, exactly
        expect(bytes.indexOf(payloads[0])).toBeGreaterThan(0);
      }
      // reading every field of every segment never throws
      for (const seg of msg.segments()) {
        for (let i = 1; i <= seg.fieldCount; i++) {
          expect(typeof seg.get(i)).toBe('string');
        }
      }
    });

    it('re-serializes equivalently after an edit', () => {
      const msg = parseMessage(payloads[0]);
      const before = msg.segments().map((s) => s.toString());
      msg.set('MSH-10', 'EDITED');
      const again = parseMessage(msg.toBuffer());
      expect(again.controlId).toBe('EDITED');
      expect(again.segments().length).toBe(before.length);
      expect(again.get('MSH-9')).toBe(messageType);
      expect(again.encoding).toBe(msg.encoding);
    });
  });

  it('decodes every delimiter escape (hl7dn_orm_o01_v23_all_escapes)', () => {
    const msg = parseMessage(sampleBytes('hl7dn_orm_o01_v23_all_escapes.hl7'));
    expect(msg.get('PID-5.1')).toBe('Smith|^~\\&');
    expect(msg.get('PID-5.2')).toBe('John');
    expect(msg.getRaw('PID-5.1')).toBe('Smith\\F\\\\S\\\\R\\\\E\\\\T\\');
    expect(msg.get('MSH-8')).toBe('ALEVIB01');
  });

  it('keeps an invalid escape literally (hl7dn_adt_a08_v24_zsegment_invalid_escape)', () => {
    const msg = parseMessage(sampleBytes('hl7dn_adt_a08_v24_zsegment_invalid_escape.hl7'));
    expect(msg.get('ZZ1-9')).toBe('BSV 4\\5 re.');
    expect(msg.segments().map((s) => s.name)).toEqual(['MSH', 'ZZ1']);
    expect(msg.sendingApplication).toBe('TEST');
    expect(msg.get('MSH-3')).toBe('TEST^TEST');
  });

  it('reads the 2.7 truncation character from MSH-2', () => {
    const msg = parseMessage(sampleBytes('hl7apy_rsp_k22_v27_truncation_char.hl7'));
    expect(msg.delimiters).toEqual({
      field: '|',
      component: '^',
      repetition: '~',
      escape: '\\',
      subcomponent: '&',
      truncation: '#',
    });
    expect(msg.get('MSH-2')).toBe('^~\\&#');
    expect(msg.messageType).toBe('RSP');
    expect(msg.getAll('QPD-3')).toEqual(['@PID.3.1^1010110909194822', '@PID.5.1^SMITH']);
    expect(msg.get('PID-3.4.2')).toBe('1.3.6.1.4.1.21367.2011.2.5.17');
    const classic = parseMessage(sampleBytes('hl7apy_rsp_k22_v27_four_enc_chars.hl7'));
    expect(classic.delimiters.truncation).toBeUndefined();
    expect(classic.get('PID-3.4.2')).toBe(msg.get('PID-3.4.2'));
  });

  it('decodes the ISO-8859-1 file with its MSH-18 and keeps glued segments inside PID/PV2', () => {
    const bytes = sampleBytes('nodehl7_adt_a08_v24_dutch_8859_glued_segments.hl7');
    expect(bytes.includes(Buffer.from([0xeb]))).toBe(true); // ë in latin1
    const msg = parseMessage(bytes);
    expect(msg.encoding).toBe('latin1');
    expect(msg.get('PID-5.1.1')).toBe('van Testpatiënt-van het Hek');
    expect(msg.get('PID-5[2].2')).toBe('Jannie');
    expect(msg.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'PV1', 'PV2']);
    expect(msg.toBuffer()).toBe(bytes);
  });

  it('decodes UTF-8 files (® in MSH-3, middle dots in OBX)', () => {
    const q = parseMessage(sampleBytes('medplum_qbp_q11_utf8_registered.hl7'));
    expect(q.encoding).toBe('utf8');
    expect(q.sendingApplication).toBe('cobas® pro');
    const o = parseMessage(sampleBytes('medplum_oul_r22_utf8_middot.hl7'));
    const values = o.segments('OBX').map((s) => s.toString());
    expect(values.some((v) => v.includes('\u00b7'))).toBe(true);
  });

  it('handles empty repetitions, bare segments, blank lines and a missing control id', () => {
    const a13 = parseMessage(sampleBytes('emap_adt_a13_v24_empty_reps.hl7'));
    expect(a13.getAll('PV1-4')).toEqual(['', 'I']);
    const bare = parseMessage(sampleBytes('emap_adt_a02_v24_bare_pd1.hl7'));
    expect(bare.hasSegment('PD1')).toBe(true);
    expect(bare.get('PD1-1')).toBeUndefined();
    const blank = parseMessage(sampleBytes('hl7dn_adt_a04_v27_blank_line.hl7'));
    expect(blank.segments().map((s) => s.name)).toEqual(['MSH', 'EVN']);
    const nullField = parseMessage(sampleBytes('hl7dn_adt_a04_v27_explicit_null.hl7'));
    expect(nullField.get('EVN-3')).toBe('');
    expect(nullField.get('EVN-4')).toBe('""');
    const noId = parseMessage(sampleBytes('hl7dn_oru_r01_v24_no_control_id.hl7'));
    expect(noId.controlId).toBe('');
    const swap = parseMessage(sampleBytes('emap_adt_a17_v24_swap_two_patients_zpd.hl7'));
    expect(swap.segments('PID')).toHaveLength(2);
    expect(swap.get('PID(2)-3')).toBe(swap.segment('PID', 2)?.get(3));
    expect(swap.get('PID(2)-3')).not.toBe(swap.get('PID-3'));
  });

  it('splits the FHS/BHS batch file into its one message', () => {
    const bytes = sampleBytes('pyhl7_batch_fhs_bhs_adt_a04.hl7');
    const [payload] = splitMessages(bytes);
    const text = payload.toString('latin1');
    expect(text.startsWith('MSH|')).toBe(true);
    expect(text).not.toMatch(/(FHS|BHS|BTS|FTS)\|/);
    const msg = parseMessage(payload);
    expect(msg.controlId).toBe('12334456778890');
    expect(msg.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'PD1', 'NK1', 'PV1']);
  });
});
