import { isAscii, isUtf8 } from 'node:buffer';
import * as iconv from 'iconv-lite';

/**
 * MSH-18 character sets (HL7 table 0211, plus the DICOM-style `ISO IR nnn` spellings some
 * senders use) mapped to Node / iconv-lite encoding names. Keys are normalised with
 * {@link normaliseCharsetName}.
 */
const HL7_CHARSETS: Readonly<Record<string, string>> = {
  ASCII: 'ascii',
  USASCII: 'ascii',
  ISOIR6: 'ascii',
  '8859/1': 'latin1',
  ISOIR100: 'latin1',
  '8859/2': 'iso-8859-2',
  ISOIR101: 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  ISOIR109: 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  ISOIR110: 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  ISOIR144: 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  ISOIR127: 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  ISOIR126: 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  ISOIR138: 'iso-8859-8',
  '8859/9': 'iso-8859-9',
  ISOIR148: 'iso-8859-9',
  '8859/10': 'iso-8859-10',
  '8859/11': 'iso-8859-11',
  ISOIR166: 'iso-8859-11',
  '8859/13': 'iso-8859-13',
  '8859/14': 'iso-8859-14',
  '8859/15': 'iso-8859-15',
  ISOIR203: 'iso-8859-15',
  UNICODE: 'utf8',
  UNICODEUTF8: 'utf8',
  ISOIR192: 'utf8',
  UTF8: 'utf8',
  GB180302000: 'gb18030',
  GB18030: 'gb18030',
  KSX1001: 'euc-kr',
  ISOIR149: 'euc-kr',
  BIG5: 'big5',
  // JIS X 0201 (romaji / katakana) is the single-byte part of Shift_JIS
  ISOIR13: 'shift_jis',
  ISOIR14: 'shift_jis',
};

/** Encodings whose bytes are not ASCII-compatible: the header could not even be found. */
const NOT_ASCII_SAFE = /^(?:utf-?(?:16|32)|ucs-?[24]|utf-?7)/i;

export function normaliseCharsetName(name: string): string {
  return name.toUpperCase().replace(/[\s_-]+/g, '');
}

/**
 * Map an MSH-18 value (or a charset option) to the encoding name we decode with, or undefined
 * when neither HL7 table 0211 nor iconv-lite knows it.
 */
export function resolveCharset(name: string): string | undefined {
  const trimmed = name.trim();
  const known = HL7_CHARSETS[normaliseCharsetName(trimmed)];
  if (known !== undefined) {
    return known;
  }
  if (NOT_ASCII_SAFE.test(trimmed) || !iconv.encodingExists(trimmed)) {
    return undefined;
  }
  const lower = trimmed.toLowerCase();
  switch (normaliseCharsetName(lower)) {
    case 'ISO88591':
    case 'LATIN1':
      return 'latin1';
    case 'UTF8':
      return 'utf8';
    default:
      return lower;
  }
}

/** Encodings Node decodes natively (no iconv round trip). */
function isNative(encoding: string): encoding is 'utf8' | 'latin1' | 'ascii' {
  return encoding === 'utf8' || encoding === 'latin1' || encoding === 'ascii';
}

export function bufferIsAscii(buf: Buffer): boolean {
  return isAscii(buf);
}

export function bufferIsUtf8(buf: Buffer): boolean {
  return isUtf8(buf);
}

/** Decode bytes with a resolved encoding name. */
export function decodeBytes(buf: Buffer, encoding: string): string {
  if (encoding === 'ascii') {
    // Node's 'ascii' decoder strips the high bit; latin1 keeps stray bytes visible
    return buf.toString('latin1');
  }
  if (isNative(encoding)) {
    return buf.toString(encoding);
  }
  return iconv.decode(buf, encoding);
}

/** Encode text with a resolved encoding name. */
export function encodeText(text: string, encoding: string): Buffer {
  if (isNative(encoding)) {
    return Buffer.from(text, encoding);
  }
  return iconv.encode(text, encoding);
}
