import { parseMessage, splitMessages } from './index';

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
