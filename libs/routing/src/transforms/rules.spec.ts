import type { FieldRule } from '@engine/config';
import { parseMessage } from '@engine/hl7';
import { TransformError, applyRules, checkRules } from './rules';

const SRC =
  'MSH|^~\\&|LAB|NORTH|EHR|MAIN|20240101120000||ADT^A08^ADT_A01|C1|P|2.5.1\r' +
  'EVN|A08|20240101120000\r' +
  'PID|1||MRN1^^^NORTH^MR~NHS9^^^NHS^NH~X7^^^OLD^PI||DOE^JANE||19800101|F|||1 HIGH ST^^TOWN\r' +
  'PV1|1|I|W1^101^A||||D1^SMITH\r' +
  'ZPD|1|custom\r' +
  'ZPD|2|more\r';

const tables = {
  classes: { I: 'INPATIENT', O: 'OUTPATIENT' },
  facilities: { NORTH: 'N01' },
};

function apply(rules: FieldRule[], src = SRC) {
  const msg = parseMessage(Buffer.from(src));
  applyRules(msg, rules, tables);
  return msg;
}

describe('applyRules', () => {
  it('does nothing without rules: the message stays unmodified', () => {
    const msg = apply([]);
    expect(msg.isModified).toBe(false);
    expect(msg.toBuffer().toString()).toBe(SRC);
  });

  describe('set', () => {
    it('sets a header field, escaping separators in the value', () => {
      const msg = apply([
        { set: 'MSH-5', value: 'HIS' },
        { set: 'MSH-6', value: 'A|B^C&D~E\\F' },
      ]);
      expect(msg.get('MSH-5')).toBe('HIS');
      expect(msg.getRaw('MSH-6')).toBe('A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F');
      const again = parseMessage(msg.toBuffer());
      expect(again.get('MSH-6')).toBe('A|B^C&D~E\\F');
      expect(again.get('MSH-7')).toBe('20240101120000');
    });

    it('sets a repetition component and subcomponent, creating them as needed', () => {
      const msg = apply([
        { set: 'PID-3[2].4.1', value: 'NHS-E' },
        { set: 'PID-3[4].1', value: 'NEW' },
        { set: 'PV1-3.1', value: 'W2' },
      ]);
      expect(msg.getAll('PID-3.1')).toEqual(['MRN1', 'NHS9', 'X7', 'NEW']);
      expect(msg.get('PID-3[2].4')).toBe('NHS-E');
      expect(msg.get('PID-3[2].5')).toBe('NH');
      expect(msg.get('PV1-3')).toBe('W2^101^A');
    });

    it('replaces the whole field when the path names no repetition', () => {
      const msg = apply([{ set: 'PID-3', value: 'ONLY' }]);
      expect(msg.getAll('PID-3')).toEqual(['ONLY']);
    });

    it('creates a missing segment', () => {
      const msg = apply([{ set: 'ZEN-1', value: 'engine' }]);
      expect(msg.segments().map((s) => s.name)).toEqual([
        'MSH',
        'EVN',
        'PID',
        'PV1',
        'ZPD',
        'ZPD',
        'ZEN',
      ]);
      expect(msg.get('ZEN-1')).toBe('engine');
    });

    it('leaves the message unmodified when the value is already there', () => {
      const msg = apply([{ set: 'MSH-5', value: 'EHR' }]);
      expect(msg.isModified).toBe(false);
    });
  });

  describe('copy', () => {
    it('copies wire text, components and escapes included', () => {
      const src = SRC.replace('DOE^JANE', 'O\\S\\BRIEN^JANE');
      const msg = apply(
        [
          { copy: 'PID-5', to: 'PID-9' },
          { copy: 'PID-3[2].1', to: 'PID-2' },
        ],
        src,
      );
      expect(msg.getRaw('PID-9')).toBe('O\\S\\BRIEN^JANE');
      expect(msg.get('PID-9.1')).toBe('O^BRIEN');
      expect(msg.get('PID-2')).toBe('NHS9');
    });

    it('copies every repetition of a whole field', () => {
      const msg = apply([{ copy: 'PID-3', to: 'PID-4' }]);
      expect(msg.getAll('PID-4.1')).toEqual(['MRN1', 'NHS9', 'X7']);
      expect(msg.getAll('PID-3.1')).toEqual(['MRN1', 'NHS9', 'X7']);
    });

    it('copies a header field into a component', () => {
      const msg = apply([{ copy: 'MSH-4', to: 'PV1-3.4' }]);
      expect(msg.get('PV1-3.4')).toBe('NORTH');
    });

    it('copies MSH-1 as a value, never as a separator', () => {
      const msg = apply([{ copy: 'MSH-1', to: 'ZPD-3' }]);
      expect(msg.getRaw('ZPD-3')).toBe('\\F\\');
      expect(msg.get('ZPD-3')).toBe('|');
    });

    it('does nothing when the source is absent', () => {
      const msg = apply([
        { copy: 'PID-30', to: 'PID-2' },
        { copy: 'OBX-5', to: 'PID-2' },
      ]);
      expect(msg.isModified).toBe(false);
    });
  });

  describe('delete', () => {
    it('removes a repetition, keeping the others in order', () => {
      const msg = apply([{ delete: 'PID-3[2]' }]);
      expect(msg.getAll('PID-3.1')).toEqual(['MRN1', 'X7']);
    });

    it('empties a field or a component', () => {
      const msg = apply([{ delete: 'PID-11' }, { delete: 'PV1-3.2' }]);
      expect(msg.get('PID-11')).toBe('');
      expect(msg.get('PV1-3')).toBe('W1^^A');
      expect(msg.get('PID-8')).toBe('F');
    });

    it('removes segments by name, or one occurrence', () => {
      expect(
        apply([{ delete: 'ZPD' }])
          .segments()
          .map((s) => s.name),
      ).toEqual(['MSH', 'EVN', 'PID', 'PV1']);
      const one = apply([{ delete: 'ZPD(1)' }]);
      expect(one.segments('ZPD').map((s) => s.get(1))).toEqual(['2']);
    });

    it('does nothing when the target is absent', () => {
      const msg = apply([
        { delete: 'PID-3[9]' },
        { delete: 'PID-30' },
        { delete: 'OBX-5' },
        { delete: 'NTE' },
        { delete: 'PID-2' },
      ]);
      expect(msg.isModified).toBe(false);
      expect(msg.hasSegment('OBX')).toBe(false);
    });
  });

  describe('map', () => {
    it('replaces a value through a table', () => {
      const msg = apply([
        { map: 'PV1-2', table: 'classes' },
        { map: 'MSH-4', table: 'facilities' },
      ]);
      expect(msg.get('PV1-2')).toBe('INPATIENT');
      expect(msg.get('MSH-4')).toBe('N01');
    });

    it('keeps a value without entry, or uses the default', () => {
      const src = SRC.replace('PV1|1|I|', 'PV1|1|E|');
      expect(apply([{ map: 'PV1-2', table: 'classes' }], src).get('PV1-2')).toBe('E');
      expect(apply([{ map: 'PV1-2', table: 'classes', default: 'U' }], src).get('PV1-2')).toBe('U');
    });

    it('maps every repetition of a whole field and leaves empty values alone', () => {
      const msg = parseMessage(Buffer.from(SRC));
      applyRules(
        msg,
        [
          { map: 'PID-3', table: 'ids', default: 'Z' },
          { map: 'PID-2', table: 'ids', default: 'Z' },
        ],
        { ids: { 'NHS9^^^NHS^NH': 'N' } },
      );
      expect(msg.getAll('PID-3')).toEqual(['Z', 'N', 'Z']);
      expect(msg.get('PID-2')).toBe('');
    });

    it('maps a component of a repetition', () => {
      const msg = parseMessage(Buffer.from(SRC));
      applyRules(msg, [{ map: 'PID-3[2].4', table: 'auth' }], { auth: { NHS: 'NHS-ENGLAND' } });
      expect(msg.get('PID-3[2].4')).toBe('NHS-ENGLAND');
      expect(msg.get('PID-3[1].4')).toBe('NORTH');
    });

    it('does not look values up in the prototype chain', () => {
      const src = SRC.replace('PV1|1|I|', 'PV1|1|constructor|');
      expect(apply([{ map: 'PV1-2', table: 'classes' }], src).get('PV1-2')).toBe('constructor');
    });
  });

  describe('errors', () => {
    const cases: Array<[FieldRule, RegExp]> = [
      [{ set: 'PID3', value: 'x' }, /rules\[0\] \(set\): Invalid HL7 path 'PID3'/],
      [{ set: 'PID-0', value: 'x' }, /1-based/],
      [{ copy: 'PID-3', to: 'P-ID-3' }, /rules\[0\] \(copy\): Invalid HL7 path 'P-ID-3'/],
      [{ delete: 'MSH-2' }, /MSH-1 and MSH-2 \(the separators\) cannot be changed/],
      [{ set: 'MSH-1', value: '#' }, /cannot be changed/],
      [{ delete: 'MSH' }, /the MSH segment cannot be deleted/],
      [{ delete: 'ZPD(0)' }, /1-based/],
      [{ map: 'PV1-2', table: 'nope' }, /rules\[0\] \(map\): unknown table 'nope'/],
      [{ map: 'PV1-2', table: 'toString' }, /unknown table 'toString'/],
    ];

    it.each(cases)('rejects %j', (rule, message) => {
      const msg = parseMessage(Buffer.from(SRC));
      let error: unknown;
      try {
        applyRules(msg, [rule], tables);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TransformError);
      expect((error as TransformError).code).toBe('BAD_RULE');
      expect((error as TransformError).message).toMatch(message);
      expect(() => checkRules([rule], tables)).toThrow(message);
    });

    it('checks every rule before changing anything', () => {
      const msg = parseMessage(Buffer.from(SRC));
      expect(() =>
        applyRules(
          msg,
          [
            { set: 'MSH-5', value: 'CHANGED' },
            { map: 'PV1-2', table: 'missing' },
          ],
          tables,
        ),
      ).toThrow(/rules\[1\] \(map\)/);
      expect(msg.isModified).toBe(false);
      expect(msg.get('MSH-5')).toBe('EHR');
    });

    it('accepts valid rules', () => {
      expect(() =>
        checkRules(
          [
            { set: 'PID-3[2].4.1', value: 'x' },
            { copy: 'MSH-1', to: 'ZPD-1' },
            { delete: 'ZPD' },
            { delete: 'obx(2)-5' },
            { map: 'PV1-2', table: 'classes', default: 'U' },
          ],
          tables,
        ),
      ).not.toThrow();
    });
  });
});
