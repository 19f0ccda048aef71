import * as iconv from 'iconv-lite';
import {
  HL7_ERROR_CODES,
  buildAck,
  buildAckBuffer,
  chooseAckCode,
  formatHl7DateTime,
  parseMessage,
  type Hl7Message,
} from './index';

const now = new Date(2024, 4, 6, 7, 8, 9);

function original(version: string, extra = ''): Hl7Message {
  return parseMessage(
    `MSH|^~\\&|SENDAPP^1.2^ISO|SENDFAC|RECVAPP|RECVFAC|20240101||ADT^A01^ADT_A01|MSG42|P|${version}${extra}\rPID|1||X\r`,
  );
}

describe('buildAck', () => {
  it('mirrors the header and answers MSA for an accept', () => {
    const ack = buildAck(original('2.5.1'), { code: 'AA', controlId: 'ACK1', now });
    expect(ack.segments().map((s) => s.name)).toEqual(['MSH', 'MSA']);
    expect(ack.get('MSH-3')).toBe('RECVAPP');
    expect(ack.get('MSH-4')).toBe('RECVFAC');
    expect(ack.get('MSH-5')).toBe('SENDAPP^1.2^ISO');
    expect(ack.get('MSH-6')).toBe('SENDFAC');
    expect(ack.get('MSH-9')).toBe('ACK^A01^ACK');
    expect(ack.controlId).toBe('ACK1');
    expect(ack.get('MSH-11')).toBe('P');
    expect(ack.get('MSH-12')).toBe('2.5.1');
    expect(ack.get('MSA-1')).toBe('AA');
    expect(ack.get('MSA-2')).toBe('MSG42');
    expect(ack.hasSegment('ERR')).toBe(false);
    expect(ack.toString()).toMatch(/\rMSA\|AA\|MSG42\r$/);
  });

  it('shapes ERR-1 (segment^sequence^field^code&text&HL70357) before 2.5', () => {
    const ack = buildAck(original('2.3'), {
      code: 'AE',
      text: 'PID-3 missing',
      error: { code: 101, location: 'PID-3' },
      now,
    });
    expect(ack.get('MSA-3')).toBe('PID-3 missing');
    const err = ack.segment('ERR');
    expect(err?.toString()).toBe('ERR|PID^1^3^101&Required field missing&HL70357');
    expect(ack.get('ERR-2')).toBeUndefined();
    expect(ack.get('MSH-12')).toBe('2.3');
  });

  it('shapes ERR-2 location, ERR-3 CWE and ERR-4 severity from 2.5', () => {
    const ack = buildAck(original('2.5'), {
      code: 'AR',
      text: 'unsupported',
      error: { code: 200, location: 'MSH-9' },
      now,
    });
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-3')).toBe('unsupported');
    expect(ack.get('ERR-1')).toBe('');
    expect(ack.get('ERR-2')).toBe('MSH^1^9');
    expect(ack.get('ERR-3')).toBe('200^Unsupported message type^HL70357');
    expect(ack.get('ERR-4')).toBe('E');
    const custom = buildAck(original('2.6'), {
      code: 'AE',
      error: { code: 207, text: 'db down', severity: 'F', location: 'OBX(2)-5.1' },
      now,
    });
    expect(custom.get('ERR-2')).toBe('OBX^2^5^^1');
    expect(custom.get('ERR-3')).toBe('207^db down^HL70357');
    expect(custom.get('ERR-4')).toBe('F');
  });

  it('drops MSA-3 from 2.7 on and moves the text to ERR-8', () => {
    const ack = buildAck(original('2.7'), { code: 'AE', text: 'bad', error: { code: 102 }, now });
    expect(ack.get('MSA-3')).toBeUndefined();
    expect(ack.get('ERR-8')).toBe('bad');
    expect(ack.get('ERR-3.1')).toBe('102');
  });

  it('uses the original delimiters and charset', () => {
    const src = 'MSH#*@!%#SA#SF#RA#RF#2024##ORU*R01#ID7#P#2.4######8859/1\rPID#1##Zoë\r';
    const orig = parseMessage(Buffer.from(src, 'latin1'));
    const ack = buildAck(orig, {
      code: 'AE',
      text: 'Zoë*ok',
      error: { code: 207, location: 'PID-3' },
      now,
    });
    const text = ack.toString();
    expect(text.startsWith('MSH#*@!%#RA#RF#SA#SF#')).toBe(true);
    expect(ack.get('MSH-9')).toBe('ACK*R01*ACK');
    expect(ack.get('MSH-18')).toBe('8859/1');
    expect(ack.encoding).toBe('latin1');
    expect(ack.getRaw('MSA-3')).toBe('Zoë!S!ok');
    expect(ack.get('ERR-1')).toBe('PID*1*3*207%Application internal error%HL70357');
    expect(ack.toBuffer().equals(iconv.encode(text, 'latin1'))).toBe(true);
  });

  it('answers unparseable input with a generic v2.5 ACK', () => {
    const ack = buildAck(undefined, { code: 'AR', error: { code: 100, text: 'not HL7' }, now });
    expect(ack.get('MSH-3')).toBe('');
    expect(ack.get('MSH-5')).toBe('');
    expect(ack.get('MSH-9')).toBe('ACK');
    expect(ack.get('MSH-12')).toBe('2.5');
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-2')).toBe('');
    expect(ack.get('ERR-3')).toBe('100^not HL7^HL70357');
    expect(parseMessage(ack.toBuffer()).get('MSA-1')).toBe('AR');
  });

  it('copes with an original that has no control id or trigger', () => {
    const orig = parseMessage('MSH|^~\\&|LAB||DEST||1991||ADT|\rPID|1\r');
    const ack = buildAck(orig, { code: 'AA', now });
    expect(ack.get('MSH-9')).toBe('ACK');
    expect(ack.get('MSA-2')).toBe('');
  });

  it('writes the exact text: MSH, MSA and ERR fields in order, each segment ended by CR', () => {
    const ack = buildAck(original('2.5.1', '||||||UNICODE UTF-8'), {
      code: 'AE',
      text: 'bad',
      error: { code: 101, location: 'PID-3' },
      controlId: 'ACK1',
      now,
    });
    expect(ack.toString()).toBe(
      `MSH|^~\\&|RECVAPP|RECVFAC|SENDAPP^1.2^ISO|SENDFAC|${formatHl7DateTime(now)}||ACK^A01^ACK|` +
        'ACK1|P|2.5.1||||||UNICODE UTF-8\r' +
        'MSA|AE|MSG42|bad\r' +
        'ERR||PID^1^3|101^Required field missing^HL70357|E\r',
    );
    expect(ack.get('MSH-18')).toBe('UNICODE UTF-8');
  });

  it('buildAckBuffer gives the bytes of buildAck().toBuffer(), in the original encoding', () => {
    const latin = parseMessage(
      Buffer.from('MSH|^~\\&|SA|SF|RA|RF|2024||ADT^A01|Zoë1|P|2.4||||||8859/1\rPID|1\r', 'latin1'),
    );
    const cases: [Hl7Message | undefined, Parameters<typeof buildAck>[1]][] = [
      [original('2.5.1'), { code: 'AA', controlId: 'A1', now }],
      [
        original('2.3'),
        { code: 'AE', text: 'x|y', error: { code: 100, location: 'PID' }, controlId: 'A4', now },
      ],
      [latin, { code: 'AR', text: 'Zoë', error: { code: 207 }, controlId: 'A2', now }],
      [undefined, { code: 'CR', error: { code: 100, text: 'not HL7' }, controlId: 'A3', now }],
    ];
    for (const [orig, opts] of cases) {
      expect(buildAckBuffer(orig, opts).equals(buildAck(orig, opts).toBuffer())).toBe(true);
    }
    const bytes = buildAckBuffer(latin, { code: 'AA', now });
    expect(bytes.includes(Buffer.from('|Zoë1\r', 'latin1'))).toBe(true);
  });

  it('exports table 0357', () => {
    expect(HL7_ERROR_CODES[0]).toBe('Message accepted');
    expect(HL7_ERROR_CODES[203]).toBe('Unsupported version id');
    expect(Object.keys(HL7_ERROR_CODES).map(Number)).toEqual([
      0, 100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207,
    ]);
  });
});

describe('chooseAckCode', () => {
  const plain = original('2.5');
  const withAck = (msh15: string, msh16 = ''): Hl7Message =>
    original('2.5', `|||${msh15}|${msh16}`);

  it('original mode: AA/AE/AR regardless of MSH-15', () => {
    expect(chooseAckCode(plain, 'accept', 'original')).toBe('AA');
    expect(chooseAckCode(plain, 'error', 'original')).toBe('AE');
    expect(chooseAckCode(withAck('NE'), 'reject', 'original')).toBe('AR');
  });

  it('enhanced mode: CA/CE/CR, AL or empty MSH-15 always answers', () => {
    expect(chooseAckCode(plain, 'accept', 'enhanced')).toBe('CA');
    expect(chooseAckCode(withAck('AL'), 'error', 'enhanced')).toBe('CE');
    expect(chooseAckCode(withAck('AL'), 'reject', 'enhanced')).toBe('CR');
  });

  it('enhanced mode: NE never, ER only on error/reject, SU only on accept', () => {
    for (const o of ['accept', 'error', 'reject'] as const) {
      expect(chooseAckCode(withAck('NE'), o, 'enhanced')).toBeNull();
    }
    expect(chooseAckCode(withAck('ER'), 'accept', 'enhanced')).toBeNull();
    expect(chooseAckCode(withAck('ER'), 'error', 'enhanced')).toBe('CE');
    expect(chooseAckCode(withAck('ER'), 'reject', 'enhanced')).toBe('CR');
    expect(chooseAckCode(withAck('SU'), 'accept', 'enhanced')).toBe('CA');
    expect(chooseAckCode(withAck('SU'), 'error', 'enhanced')).toBeNull();
  });

  it('auto: enhanced when MSH-15 or MSH-16 is valued, else original', () => {
    expect(chooseAckCode(plain, 'accept', 'auto')).toBe('AA');
    expect(chooseAckCode(withAck('AL'), 'accept', 'auto')).toBe('CA');
    expect(chooseAckCode(withAck('', 'AL'), 'error', 'auto')).toBe('CE');
    expect(chooseAckCode(withAck('NE', 'AL'), 'accept', 'auto')).toBeNull();
    expect(chooseAckCode(undefined, 'reject', 'auto')).toBe('AR');
    expect(chooseAckCode(undefined, 'reject', 'enhanced')).toBe('CR');
  });

  it('answers regardless of MSH-15 when honorAcceptAckType is false', () => {
    const ne = parseMessage('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5|||NE|NE\rPID|1\r');
    expect(chooseAckCode(ne, 'accept', 'auto')).toBeNull();
    expect(chooseAckCode(ne, 'accept', 'auto', { honorAcceptAckType: false })).toBe('CA');
    expect(chooseAckCode(ne, 'reject', 'auto', { honorAcceptAckType: false })).toBe('CR');
  });
});
