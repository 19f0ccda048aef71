import { buildBatchAck, isBatch, parseMessage, readBatchHeader, splitMessages } from './index';

const msg = (id: string, sep = '\r'): string =>
  ['MSH|^~\\&|A|B|C|D|20240101||ADT^A01|' + id + '|P|2.5', 'PID|1||' + id].join(sep) + sep;

describe('splitMessages', () => {
  it('returns a single message as is (same buffer)', () => {
    const buf = Buffer.from(msg('1') + '\r\n');
    const out = splitMessages(buf);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(buf);
  });

  it('splits messages back to back', () => {
    const buf = Buffer.from(msg('1') + msg('2') + msg('3'));
    const out = splitMessages(buf);
    expect(out.map((b) => b.toString())).toEqual([msg('1'), msg('2'), msg('3')]);
  });

  it('splits messages separated by blank lines (LF and CRLF files)', () => {
    const lf = Buffer.from(msg('1', '\n') + '\n\n' + msg('2', '\n') + '\n');
    expect(splitMessages(lf).map((b) => parseMessage(b).controlId)).toEqual(['1', '2']);
    expect(splitMessages(lf)[0].toString()).toBe(msg('1', '\n'));
    const crlf = Buffer.from(msg('1', '\r\n') + '\r\n' + msg('2', '\r\n'));
    expect(splitMessages(crlf).map((b) => b.toString())).toEqual([
      msg('1', '\r\n'),
      msg('2', '\r\n'),
    ]);
  });

  it('keeps a blank line inside one message (it is one message)', () => {
    const buf = Buffer.from('MSH|^~\\&|A|B|C|D|1||ADT^A04|9|P|2.7\r\rEVN|A04|1\r');
    expect(splitMessages(buf)).toEqual([buf]);
  });

  it('drops FHS/BHS/BTS/FTS envelopes', () => {
    const batch =
      'FHS|^~\\&|APP|FAC\rBHS|^~\\&|APP|FAC\r' +
      msg('1') +
      msg('2') +
      'BTS|2\rBHS|^~\\&\r' +
      msg('3') +
      'BTS|1\rFTS|2\r';
    const out = splitMessages(Buffer.from(batch));
    expect(out.map((b) => b.toString())).toEqual([msg('1'), msg('2'), msg('3')]);
  });

  it('returns [] for blank input and the input itself when there is no MSH', () => {
    expect(splitMessages(Buffer.from(' \r\n\r\n'))).toEqual([]);
    const junk = Buffer.from('hello\rworld\r');
    expect(splitMessages(junk)).toEqual([junk]);
  });

  it('keeps bytes intact (non-UTF-8 payloads)', () => {
    const a = Buffer.from(msg('1').replace('PID|1||1', 'PID|1||M\u00fcller') + msg('2'), 'latin1');
    const [first] = splitMessages(a);
    expect(first.includes(Buffer.from([0xfc]))).toBe(true);
  });
});

describe('isBatch', () => {
  it('is true when the first segment is FHS or BHS', () => {
    expect(isBatch(Buffer.from('FHS|^~\\&|A\rBHS|^~\\&|A\r' + msg('1') + 'BTS|1\rFTS|1\r'))).toBe(
      true,
    );
    expect(isBatch(Buffer.from('\r\n  BHS|^~\\&|A\r' + msg('1') + 'BTS|1\r'))).toBe(true);
    expect(isBatch(Buffer.from('\u00ef\u00bb\u00bfBHS#^~\\&\r', 'latin1'))).toBe(true);
  });

  it('is false for a message, a lone trailer, a segment named like a header, or nothing', () => {
    expect(isBatch(Buffer.from(msg('1')))).toBe(false);
    expect(isBatch(Buffer.from('BTS|1\r'))).toBe(false);
    expect(isBatch(Buffer.from('BHSX|a\r'))).toBe(false);
    expect(isBatch(Buffer.from('BHS'))).toBe(false);
    expect(isBatch(Buffer.alloc(0))).toBe(false);
  });
});

describe('readBatchHeader', () => {
  it('reads FHS and BHS fields with HL7 numbering and the declared separators', () => {
    const h = readBatchHeader(
      Buffer.from(
        'FHS#^~\\&#LAB#HOSP#ENGINE#MPI#20240101##f.hl7##F1\rBHS#^~\\&#LAB^x#HOSP#ENGINE#MPI#20240101####B7\r' +
          msg('1'),
      ),
    );
    expect(h?.fieldSeparator).toBe('#');
    expect(h?.encodingCharacters).toBe('^~\\&');
    expect(h?.fhs?.[3]).toBe('LAB');
    expect(h?.fhs?.[11]).toBe('F1');
    expect(h?.bhs?.[3]).toBe('LAB^x');
    expect(h?.bhs?.[11]).toBe('B7');
  });

  it('is undefined without a header', () => {
    expect(readBatchHeader(Buffer.from(msg('1')))).toBeUndefined();
  });
});

describe('buildBatchAck', () => {
  const ack = (id: string, code: string): Buffer =>
    Buffer.from(`MSH|^~\\&|C|D|A|B|20240101||ACK^A01^ACK|K${id}|P|2.5\rMSA|${code}|${id}\r`);

  it('wraps the ACKs in BHS/BTS mirroring the original batch header', () => {
    const header = readBatchHeader(Buffer.from('BHS|^~\\&|LAB|HOSP|ENGINE|MPI|20240101||||B7\r'));
    const out = buildBatchAck(header, [ack('1', 'AA'), ack('2', 'AR')], {
      controlId: 'R1',
      timestamp: '20240102030405',
    }).toString('latin1');
    const segs = out.split('\r').filter((s) => s !== '');
    expect(segs[0]).toBe('BHS|^~\\&|ENGINE|MPI|LAB|HOSP|20240102030405||||R1|B7');
    expect(segs.filter((s) => s.startsWith('MSA'))).toEqual(['MSA|AA|1', 'MSA|AR|2']);
    expect(segs[segs.length - 1]).toBe('BTS|2');
    // The result is itself a batch whose messages the splitter finds again.
    expect(isBatch(Buffer.from(out))).toBe(true);
    expect(splitMessages(Buffer.from(out)).map((m) => parseMessage(m).getRaw('MSA-2'))).toEqual([
      '1',
      '2',
    ]);
  });

  it('adds FHS/FTS when the batch came in a file, with the file control id referenced', () => {
    const header = readBatchHeader(
      Buffer.from('FHS|^~\\&|LAB|HOSP|ENGINE|MPI|20240101||||F1\rBHS|^~\\&|LAB|HOSP\r'),
    );
    const segs = buildBatchAck(header, [ack('1', 'AA')], { controlId: 'R2', timestamp: 'T' })
      .toString('latin1')
      .split('\r')
      .filter((s) => s !== '');
    expect(segs[0]).toBe('FHS|^~\\&|ENGINE|MPI|LAB|HOSP|T||||R2|F1');
    expect(segs[1]).toBe('BHS|^~\\&|||LAB|HOSP|T||||R2');
    expect(segs.slice(-2)).toEqual(['BTS|1', 'FTS|1']);
  });

  it('answers an empty batch with an empty one', () => {
    const out = buildBatchAck(undefined, [], { controlId: 'R3', timestamp: 'T' });
    expect(out.toString('latin1')).toBe('BHS|^~\\&|||||T||||R3\rBTS|0\r');
  });
});
