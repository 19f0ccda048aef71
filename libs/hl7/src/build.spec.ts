import { Hl7ParseError, createMessage, formatHl7DateTime, parseMessage } from './index';

describe('createMessage / set / addSegment', () => {
  const now = new Date(2024, 0, 2, 3, 4, 5);

  it('builds an MSH from options and serializes with \\r after each segment', () => {
    const m = createMessage({
      messageType: 'ADT^A01^ADT_A01',
      version: '2.5.1',
      controlId: 'C1',
      sendingApplication: 'ENGINE',
      sendingFacility: 'HOSP^1.2.3^ISO',
      receivingApplication: 'EHR',
      receivingFacility: 'MAIN',
      timestamp: now,
    });
    const text = m.toString();
    expect(text).toMatch(
      /^MSH\|\^~\\&\|ENGINE\|HOSP\^1\.2\.3\^ISO\|EHR\|MAIN\|20240102030405[+-]\d{4}\|\|ADT\^A01\^ADT_A01\|C1\|P\|2\.5\.1\r$/,
    );
    expect(m.messageType).toBe('ADT');
    expect(m.triggerEvent).toBe('A01');
    expect(m.messageStructure).toBe('ADT_A01');
    expect(m.get('MSH-4.2')).toBe('1.2.3');
    expect(m.encoding).toBe('utf8');
  });

  it('generates distinct control ids of at most 20 characters', () => {
    const a = createMessage().controlId;
    const b = createMessage().controlId;
    expect(a).not.toBe(b);
    expect(a.length).toBeGreaterThan(0);
    expect(a.length).toBeLessThanOrEqual(20);
  });

  it('escapes set() values and reads them back decoded', () => {
    const m = createMessage({ messageType: 'ADT^A08', controlId: '1', timestamp: now });
    m.set('PID-5.1', "O'Brien|Smith^Jr & Co~\\x");
    expect(m.getRaw('PID-5.1')).toBe("O'Brien\\F\\Smith\\S\\Jr \\T\\ Co\\R\\\\E\\x");
    expect(m.get('PID-5.1')).toBe("O'Brien|Smith^Jr & Co~\\x");
    const again = parseMessage(m.toBuffer());
    expect(again.get('PID-5.1')).toBe("O'Brien|Smith^Jr & Co~\\x");
    expect(again.get('PID-5.2')).toBeUndefined();
  });

  it('creates segments, fields, repetitions, components and subcomponents as needed', () => {
    const m = createMessage({ messageType: 'ADT^A04', controlId: '1', timestamp: now });
    m.set('PID-3[2].4.2', '2.16.840');
    expect(m.segment('PID')?.toString()).toBe('PID|||~^^^&2.16.840');
    m.set('PID-3.1', 'MRN1');
    m.set('PID-3[2].1', 'NHS');
    expect(m.get('PID-3')).toBe('MRN1');
    expect(m.getAll('PID-3.1')).toEqual(['MRN1', 'NHS']);
    expect(m.get('PID-3[2].4.2')).toBe('2.16.840');
    m.set('OBX(2)-5', 'second');
    expect(m.segments('OBX')).toHaveLength(2);
    expect(m.get('OBX(2)-5')).toBe('second');
    expect(m.get('OBX-5')).toBeUndefined();
    // set on a whole field replaces every repetition
    m.set('PID-3', 'ONLY');
    expect(m.getAll('PID-3')).toEqual(['ONLY']);
  });

  it('edits a parsed message and keeps untouched segments byte for byte', () => {
    const src =
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.4\nEVN|A01|20240101  \nPID|1||123^^^H||DOE^JANE\n';
    const m = parseMessage(Buffer.from(src));
    expect(m.isModified).toBe(false);
    m.set('PID-5.2', 'JOAN');
    expect(m.isModified).toBe(true);
    expect(m.toString()).toBe(
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.4\rEVN|A01|20240101  \rPID|1||123^^^H||DOE^JOAN\r',
    );
    m.addSegment('ZPI').set('1', 'custom');
    expect(m.toString().endsWith('ZPI|custom\r')).toBe(true);
    const evn = m.segment('EVN');
    expect(evn && m.removeSegment(evn)).toBe(true);
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'PID', 'ZPI']);
  });

  it('uses custom delimiters (including a truncation character) when building', () => {
    const m = createMessage({
      delimiters: { component: '*', truncation: '#' },
      messageType: 'ADT^A01',
      version: '2.7',
      controlId: '9',
      timestamp: now,
    });
    m.set('PID-5.1', 'A*B#C^D');
    const text = m.toString();
    expect(text.startsWith('MSH|*~\\&#|')).toBe(true);
    expect(text).toContain('|ADT*A01|');
    expect(m.getRaw('PID-5.1')).toBe('A\\S\\B\\P\\C^D');
    const again = parseMessage(text);
    expect(again.delimiters.truncation).toBe('#');
    expect(again.get('PID-5.1')).toBe('A*B#C^D');
  });

  it('writes MSH-18 and encodes toBuffer() in that charset', () => {
    const m = createMessage({
      charset: '8859/1',
      messageType: 'ADT^A08',
      controlId: '1',
      timestamp: now,
    });
    m.set('PID-5.1', 'Zoë');
    expect(m.get('MSH-18')).toBe('8859/1');
    expect(m.encoding).toBe('latin1');
    const bytes = m.toBuffer();
    expect(bytes.includes(Buffer.from([0xeb]))).toBe(true);
    expect(parseMessage(bytes).get('PID-5.1')).toBe('Zoë');
    expect(() => createMessage({ charset: 'NOPE' })).toThrow(Hl7ParseError);
  });

  it('refuses to set MSH-1/MSH-2 and bad segment names', () => {
    const m = createMessage();
    expect(() => m.set('MSH-2', 'x')).toThrow(Hl7ParseError);
    expect(() => m.addSegment('pid')).toThrow(Hl7ParseError);
  });

  it('round-trips formatting escapes through get and set', () => {
    const m = parseMessage(
      'MSH|^~\\&|||||||ORU^R01|1|P|2.5\rOBX|1|FT|X||line1\\.br\\line2 \\H\\b\\N\\ a\\F\\b\r',
    );
    const v = m.get('OBX-5');
    expect(v).toBe('line1\\.br\\line2 \\H\\b\\N\\ a|b');
    m.set('OBX-5', v ?? '');
    expect(m.getRaw('OBX-5')).toBe('line1\\.br\\line2 \\H\\b\\N\\ a\\F\\b');
  });
});

describe('formatHl7DateTime', () => {
  it('formats local time with its offset, and follows the clock from one call to the next', () => {
    const a = new Date(2024, 0, 2, 3, 4, 5, 100);
    const off = -a.getTimezoneOffset();
    const zone = `${off >= 0 ? '+' : '-'}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}${String(Math.abs(off) % 60).padStart(2, '0')}`;
    expect(formatHl7DateTime(a)).toBe(`20240102030405${zone}`);
    // Same second (cached), then the next second and an earlier one.
    expect(formatHl7DateTime(new Date(2024, 0, 2, 3, 4, 5, 900))).toBe(`20240102030405${zone}`);
    expect(formatHl7DateTime(new Date(2024, 0, 2, 3, 4, 6))).toMatch(/^20240102030406/);
    expect(formatHl7DateTime(new Date(2023, 11, 31, 23, 59, 59))).toMatch(/^20231231235959/);
  });
});
