import { NICKNAME_GROUPS } from './data/nicknames.generated';
import { matchText } from './record';

/**
 * Nickname equivalence over the shipped list (`data/nicknames.csv`, Apache-2.0; rows
 * `name1 has_nickname name2`). Two given names are equivalent when
 *  - one is listed as a nickname of the other (either direction), or
 *  - both are C or nicknames of C for some name C, and at least one of them is a one-way
 *    nickname of C (C has it as a nickname, it does not have C).
 * The one-way condition matters because the list has symmetric rows (`bill has_nickname robert`
 * as well as `robert has_nickname bill`): without it ROBERT and WILLIAM would be equivalent
 * through BILL. LIZ and BETH are (LIZ is a one-way nickname of ELIZABETH); ROBERT and WILLIAM
 * are not.
 *
 * Groups are encoded as `2 × groupId + oneWay` so that one number list per name is all a
 * comparator needs.
 */
const groupsByName = new Map<string, number[]>();
const direct = new Map<string, Set<string>>();

function addTo<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list === undefined) {
    map.set(key, [value]);
  } else if (!list.includes(value)) {
    list.push(value);
  }
}

function relate(a: string, b: string): void {
  let set = direct.get(a);
  if (set === undefined) {
    set = new Set();
    direct.set(a, set);
  }
  set.add(b);
}

const rows: [string, string[]][] = NICKNAME_GROUPS.map((entry) => {
  const [canonical, ...nicks] = entry
    .split(' ')
    .map((n) => matchText(n))
    .filter((n): n is string => n !== undefined);
  return [canonical, nicks];
});
const nicknamesOf = new Map<string, Set<string>>();
for (const [canonical, nicks] of rows) {
  const set = nicknamesOf.get(canonical) ?? new Set<string>();
  nicks.forEach((n) => set.add(n));
  nicknamesOf.set(canonical, set);
}
rows.forEach(([canonical, nicks], groupId) => {
  addTo(groupsByName, canonical, 2 * groupId);
  for (const nick of nicks) {
    relate(canonical, nick);
    relate(nick, canonical);
    const oneWay = nicknamesOf.get(nick)?.has(canonical) !== true;
    addTo(groupsByName, nick, 2 * groupId + (oneWay ? 1 : 0));
  }
});

const NONE: readonly number[] = [];

/** The nickname groups of a normalized (upper-case) given name; empty when it is in no group. */
export function nicknameGroups(name: string | undefined): readonly number[] {
  return name === undefined ? NONE : (groupsByName.get(name) ?? NONE);
}

/** True when two group lists share a group in which at least one of the two is one-way. */
export function sharesGroup(a: readonly number[], b: readonly number[]): boolean {
  for (const x of a) {
    for (const y of b) {
      if (x >> 1 === y >> 1 && ((x | y) & 1) === 1) {
        return true;
      }
    }
  }
  return false;
}

/**
 * Equivalence of two normalized first given-name tokens with their precomputed groups (the form
 * the comparator uses; see {@link areNicknames}).
 */
export function nicknameEquivalent(
  a: string,
  aGroups: readonly number[],
  b: string,
  bGroups: readonly number[],
): boolean {
  return sharesGroup(aGroups, bGroups) || (direct.get(a)?.has(b) ?? false);
}

/** True when the two given names are nickname-equivalent (`BOB` / `ROBERT`). */
export function areNicknames(a: string, b: string): boolean {
  const na = matchText(a);
  const nb = matchText(b);
  if (na === undefined || nb === undefined) {
    return false;
  }
  return nicknameEquivalent(na, nicknameGroups(na), nb, nicknameGroups(nb));
}

/** Number of distinct names in the list (for tests and docs). */
export function nicknameNameCount(): number {
  return direct.size;
}
