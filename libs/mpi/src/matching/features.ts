import doubleMetaphone from 'double-metaphone';
import { nicknameGroups } from './nicknames';
import type { MatchRecord } from './record';

/**
 * Everything a comparator needs about one name part, computed once per record: the name with
 * spaces, without spaces (`compact`, what exact and Jaro–Winkler compare, so `ELK I` = `ELKI`),
 * its tokens, its Double Metaphone codes (of `compact`) and its nickname groups (of the first
 * token).
 */
export interface NameFeatures {
  text: string;
  compact: string;
  tokens: string[];
  /** Double Metaphone primary and secondary codes; '' when the name has no consonant sound. */
  dm1: string;
  dm2: string;
  nick: readonly number[];
}

export interface DateFeatures {
  /** `YYYYMMDD`, `YYYYMM` or `YYYY`. */
  digits: string;
  year: number;
  /** 0 when unknown. */
  month: number;
  /** 0 when unknown. */
  day: number;
}

/** A {@link MatchRecord} with its per-record features: what scoring and blocking read. */
export interface PreparedRecord {
  record: MatchRecord;
  given?: NameFeatures;
  family?: NameFeatures;
  familyAliases: NameFeatures[];
  middle?: NameFeatures;
  birth?: DateFeatures;
  /** `street` without spaces. */
  streetCompact?: string;
  line2Compact?: string;
  /** `email` local part (before `@`). */
  emailLocal?: string;
}

export function nameFeatures(text: string | undefined): NameFeatures | undefined {
  if (text === undefined || text === '') {
    return undefined;
  }
  const tokens = text.split(' ');
  const compact = tokens.join('');
  const [dm1, dm2] = doubleMetaphone(compact);
  return { text, compact, tokens, dm1, dm2, nick: nicknameGroups(tokens[0]) };
}

export function dateFeatures(value: string | undefined): DateFeatures | undefined {
  if (value === undefined) {
    return undefined;
  }
  const digits = value.replace(/\D/g, '');
  if (digits.length !== 4 && digits.length !== 6 && digits.length !== 8) {
    return undefined;
  }
  return {
    digits,
    year: Number(digits.slice(0, 4)),
    month: digits.length >= 6 ? Number(digits.slice(4, 6)) : 0,
    day: digits.length === 8 ? Number(digits.slice(6, 8)) : 0,
  };
}

/** Computes the per-record features once; the result is what `scorePair` and blocking take. */
export function prepareRecord(record: MatchRecord): PreparedRecord {
  const prepared: PreparedRecord = {
    record,
    given: nameFeatures(record.given),
    family: nameFeatures(record.family),
    familyAliases: (record.familyAliases ?? [])
      .map(nameFeatures)
      .filter((f): f is NameFeatures => f !== undefined),
    middle: nameFeatures(record.middle),
    birth: dateFeatures(record.birthDate),
    streetCompact: record.street?.replace(/ /g, ''),
    line2Compact: record.line2?.replace(/ /g, ''),
  };
  if (record.email !== undefined) {
    prepared.emailLocal = record.email.slice(0, record.email.indexOf('@'));
  }
  return prepared;
}
