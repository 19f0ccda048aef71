import * as iconv from 'iconv-lite';
import {
  Hl7ParseError,
  decodeEscapes,
  encodeEscapes,
  parseMessage,
  DEFAULT_DELIMITERS,
} from './index';

const ADT = [
  'MSH|^~\\&|SENDAPP^1.2.3^ISO|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1|||AL|NE',
  'EVN|A01|20240101120000',
  'PID|1||MRN1^^^HOSP^MR~NHS9^^^NHS^NH||DOE^JOHN^Q^^DR&Dr.||19800101|M',
  'OBX|1|ST|A||first',
  'OBX|2|ST|B||second^x&y~third',
];

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(Hl7ParseError);
  expect((caught as Hl7ParseError).code).toBe(code);
}

describe('parseMessage / path access', () => {
  const msg = parseMessage(Buffer.from(ADT.join('\r') + '\r'));

  it('reads MSH header helpers with the MSH-1/MSH-2 offset', () => {
    expect(msg.get('MSH-1')).toBe('|');
    expect(msg.get('MSH-2')).toBe('^~\\&');
    expect(msg.get('MSH-3')).toBe('SENDAPP^1.2.3^ISO');
    expect(msg.sendingApplication).toBe('SENDAPP');
    expect(msg.sendingFacility).toBe('SENDFAC');
    expect(msg.receivingApplication).toBe('RECVAPP');
    expect(msg.receivingFacility).toBe('RECVFAC');
    expect(msg.get('MSH-9')).toBe('ADT^A01^ADT_A01');
    expect(msg.messageType).toBe('ADT');
    expect(msg.triggerEvent).toBe('A01');
    expect(msg.messageStructure).toBe('ADT_A01');
    expect(msg.controlId).toBe('CTRL1');
    expect(msg.version).toBe('2.5.1');
    expect(msg.acceptAckType).toBe('AL');
    expect(msg.applicationAckType).toBe('NE');
    expect(msg.encoding).toBe('utf8');
  });

  it('addresses repetitions, components and subcomponents (1-based)', () => {
    expect(msg.get('PID-3')).toBe('MRN1^^^HOSP^MR');
    expect(msg.get('PID-3[1]')).toBe('MRN1^^^HOSP^MR');
    expect(msg.get('PID-3[2]')).toBe('NHS9^^^NHS^NH');
    expect(msg.get('PID-3[2].1')).toBe('NHS9');
    expect(msg.get('PID-3.4')).toBe('HOSP');
    expect(msg.get('PID-3[2].4.1')).toBe('NHS');
    expect(msg.get('PID-5.5')).toBe('DR&Dr.');
    expect(msg.get('PID-5.5.2')).toBe('Dr.');
    expect(msg.getAll('PID-3')).toEqual(['MRN1^^^HOSP^MR', 'NHS9^^^NHS^NH']);
    expect(msg.getAll('PID-3.1')).toEqual(['MRN1', 'NHS9']);
  });

  it('distinguishes absent (undefined) from present-but-empty (empty string)', () => {
    expect(msg.get('PID-2')).toBe('');
    expect(msg.get('PID-3.2')).toBe('');
    expect(msg.get('PID-3[3]')).toBeUndefined();
    expect(msg.get('PID-3.6')).toBeUndefined();
    expect(msg.get('PID-9')).toBeUndefined();
    expect(msg.get('PV1-1')).toBeUndefined();
    expect(msg.getAll('PID-2')).toEqual([]);
    expect(msg.getAll('PV1-3')).toEqual([]);
  });

  it('addresses segment occurrences with SEG(n)', () => {
    expect(msg.get('OBX-5')).toBe('first');
    expect(msg.get('OBX(2)-5')).toBe('second^x&y');
    expect(msg.get('OBX(2)-5[2]')).toBe('third');
    expect(msg.get('OBX(2)-5.2.2')).toBe('y');
    expect(msg.get('OBX(3)-5')).toBeUndefined();
    expect(msg.segments('OBX').map((s) => s.get(1))).toEqual(['1', '2']);
    expect(msg.segment('OBX', 2)?.fieldCount).toBe(5);
    expect(msg.hasSegment('EVN')).toBe(true);
    expect(msg.hasSegment('NK1')).toBe(false);
  });

  it('rejects malformed paths with BAD_PATH', () => {
    for (const bad of ['PID', 'PID-0', 'PID-3[0]', 'PID-x', '-3', 'PID-3..1', 'PID(0)-3']) {
      expectCode(() => msg.get(bad), 'BAD_PATH');
    }
  });

  it.each([
    ['\\r', '\r'],
    ['\\n', '\n'],
    ['\\r\\n', '\r\n'],
  ])('accepts %s segment separators and skips blank lines', (_label, sep) => {
    const text = ADT.join(sep) + sep + sep + '   ' + sep;
    const m = parseMessage(Buffer.from(text, 'latin1'));
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'OBX', 'OBX']);
    expect(m.get('PID-3[2].1')).toBe('NHS9');
    expect(m.get('OBX(2)-5[2]')).toBe('third');
    expect(m.toString()).toBe(text);
  });

  it('parses strings as well as buffers', () => {
    const m = parseMessage(ADT.join('\n'));
    expect(m.get('PID-5.2')).toBe('JOHN');
    expect(m.toString()).toBe(ADT.join('\n'));
    expect(m.toBuffer().toString()).toBe(ADT.join('\n'));
  });

  it('tolerates leading whitespace and a UTF-8 BOM', () => {
    const m = parseMessage(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\r\n' + ADT.join('\r'))]),
    );
    expect(m.controlId).toBe('CTRL1');
    expect(m.segments()).toHaveLength(5);
  });

  it('uses the separators declared in MSH-1 and MSH-2', () => {
    const m = parseMessage('MSH#*@!%#A#B#C#D###X*Y#ID1#P#2.4\rPID#1##A*B@C*D!S!E%F!X48!#');
    expect(m.delimiters).toEqual({
      field: '#',
      component: '*',
      repetition: '@',
      escape: '!',
      subcomponent: '%',
    });
    expect(m.get('MSH-9')).toBe('X*Y');
    expect(m.triggerEvent).toBe('Y');
    expect(m.get('PID-3[2].1')).toBe('C');
    expect(m.get('PID-3[2].2')).toBe('D*E%FH');
    expect(m.get('PID-3[2].2.2')).toBe('FH');
  });

  it('reports EMPTY, NO_MSH and BAD_DELIMITERS', () => {
    expectCode(() => parseMessage(Buffer.alloc(0)), 'EMPTY');
    expectCode(() => parseMessage(' \r\n '), 'EMPTY');
    expectCode(() => parseMessage('PID|1||X'), 'NO_MSH');
    expectCode(() => parseMessage('FHS|^~\\&|\rMSH|^~\\&|A'), 'NO_MSH');
    expectCode(() => parseMessage('MSH'), 'BAD_DELIMITERS');
    expectCode(() => parseMessage('MSH||A|B'), 'BAD_DELIMITERS');
    expectCode(() => parseMessage('MSHA^~\\&A'), 'BAD_DELIMITERS');
    expectCode(() => parseMessage('MSH|^^\\&|A'), 'BAD_DELIMITERS');
  });

  it('segment-level access mirrors message paths', () => {
    const pid = msg.segment('PID');
    expect(pid?.name).toBe('PID');
    expect(pid?.get(5)).toBe('DOE^JOHN^Q^^DR&Dr.');
    expect(pid?.get('3[2].4')).toBe('NHS');
    expect(pid?.getAll(3)).toHaveLength(2);
    expect(msg.segment('MSH')?.get(2)).toBe('^~\\&');
  });
});

describe('escapes', () => {
  const d = DEFAULT_DELIMITERS;

  it('decodes delimiter escapes and keeps formatting escapes', () => {
    expect(decodeEscapes('A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F', d, 'utf8')).toBe('A|B^C&D~E\\F');
    expect(decodeEscapes('line1\\.br\\line2\\H\\bold\\N\\', d, 'utf8')).toBe(
      'line1\\.br\\line2\\H\\bold\\N\\',
    );
    expect(decodeEscapes('\\.sp2\\\\.in+4\\\\Zabc\\\\C2842\\\\M2442\\', d, 'utf8')).toBe(
      '\\.sp2\\\\.in+4\\\\Zabc\\\\C2842\\\\M2442\\',
    );
  });

  it('keeps invalid escapes literally and never throws', () => {
    expect(decodeEscapes('BSV 4\\5 re.', d, 'utf8')).toBe('BSV 4\\5 re.');
    expect(decodeEscapes('a\\Q\\b', d, 'utf8')).toBe('a\\Q\\b');
    expect(decodeEscapes('a\\b\\F\\c', d, 'utf8')).toBe('a\\b|c');
    expect(decodeEscapes('\\\\', d, 'utf8')).toBe('\\\\');
    expect(decodeEscapes('\\X4\\ \\XZZ\\', d, 'utf8')).toBe('\\X4\\ \\XZZ\\');
    expect(decodeEscapes('end\\', d, 'utf8')).toBe('end\\');
  });

  it('decodes \\Xhh..\\ as bytes in the message charset', () => {
    expect(decodeEscapes('A\\X0D0A\\B', d, 'utf8')).toBe('A\r\nB');
    expect(decodeEscapes('Gr\\XC3BC\\n', d, 'utf8')).toBe('Grün');
    expect(decodeEscapes('Gr\\XFC\\n', d, 'latin1')).toBe('Grün');
    expect(decodeEscapes('\\X80\\', d, 'windows-1252')).toBe('€');
    const m = parseMessage('MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||8859/1\rNTE|1||Gr\\XFC\\n\r');
    expect(m.get('NTE-3')).toBe('Grün');
  });

  it('decodes \\P\\ to the truncation character only when one is declared', () => {
    expect(decodeEscapes('a\\P\\b', { ...d, truncation: '#' }, 'utf8')).toBe('a#b');
    expect(decodeEscapes('a\\P\\b', d, 'utf8')).toBe('a\\P\\b');
  });

  it('encodes delimiters, CR/LF and the truncation character; round trips', () => {
    const t = { ...d, truncation: '#' };
    const value = 'a|b^c&d~e\\f#g\r\nh \\.br\\ i';
    const enc = encodeEscapes(value, t);
    expect(enc).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\P\\g\\X0D\\\\X0A\\h \\.br\\ i');
    expect(decodeEscapes(enc, t, 'utf8')).toBe(value);
    expect(encodeEscapes('plain', d)).toBe('plain');
  });
});

describe('charsets (MSH-18)', () => {
  const text = (charset: string): string =>
    `MSH|^~\\&|APP|FAC|||20240101||ADT^A08|1|P|2.4||||||${charset}\rPID|1||1||Müller^Zoë||19700101|F\r`;

  it('decodes the same text from latin1 and utf-8 bytes', () => {
    const latin = parseMessage(Buffer.from(text('8859/1'), 'latin1'));
    const utf = parseMessage(Buffer.from(text('UNICODE UTF-8'), 'utf8'));
    expect(latin.encoding).toBe('latin1');
    expect(utf.encoding).toBe('utf8');
    expect(latin.get('PID-5')).toBe('Müller^Zoë');
    expect(utf.get('PID-5')).toBe('Müller^Zoë');
    expect(parseMessage(Buffer.from(text('ISO IR100'), 'latin1')).get('PID-5.1')).toBe('Müller');
    expect(parseMessage(Buffer.from(text('ISO IR192'), 'utf8')).get('PID-5.1')).toBe('Müller');
  });

  it('decodes other iconv-lite charsets (8859/2, 8859/15, GB 18030)', () => {
    const pl = text('8859/2').replace('Müller^Zoë', 'Łódź^Ż');
    expect(parseMessage(iconv.encode(pl, 'iso-8859-2')).get('PID-5')).toBe('Łódź^Ż');
    const euro = text('8859/15').replace('Müller', 'M€ller');
    expect(parseMessage(iconv.encode(euro, 'iso-8859-15')).get('PID-5.1')).toBe('M€ller');
    const zh = text('GB 18030-2000').replace('Müller^Zoë', '王^小明');
    const m = parseMessage(iconv.encode(zh, 'gb18030'));
    expect(m.encoding).toBe('gb18030');
    expect(m.get('PID-5.2')).toBe('小明');
  });

  it('with MSH-18 empty: UTF-8 by default, windows-1252 when the bytes are not UTF-8', () => {
    expect(parseMessage(Buffer.from(text(''), 'utf8')).get('PID-5.1')).toBe('Müller');
    const cp = parseMessage(iconv.encode(text('').replace('Müller', 'M€ller'), 'windows-1252'));
    expect(cp.encoding).toBe('windows-1252');
    expect(cp.get('PID-5.1')).toBe('M€ller');
    const opt = parseMessage(Buffer.from(text(''), 'latin1'), { defaultCharset: '8859/1' });
    expect(opt.encoding).toBe('latin1');
    expect(opt.get('PID-5.2')).toBe('Zoë');
  });

  it('rejects an unknown MSH-18 with UNSUPPORTED_CHARSET', () => {
    expectCode(() => parseMessage(Buffer.from(text('KLINGON'))), 'UNSUPPORTED_CHARSET');
    expectCode(() => parseMessage(Buffer.from(text('UNICODE UTF-16'))), 'UNSUPPORTED_CHARSET');
  });

  it('re-encodes an edited message in its charset', () => {
    const bytes = Buffer.from(text('8859/1'), 'latin1');
    const m = parseMessage(bytes);
    expect(m.toBuffer()).toBe(bytes);
    m.set('PID-5.2', 'Zoé');
    const out = m.toBuffer();
    expect(out.includes(Buffer.from([0xe9]))).toBe(true);
    expect(parseMessage(out).get('PID-5')).toBe('Müller^Zoé');
  });
});
