export const ROLES = ['gateway', 'worker', 'api'] as const;
export type Role = (typeof ROLES)[number];

/** Roles from the command line (`main.js gateway worker`) or ENGINE_ROLES; default all. */
export function parseRoles(args: string[], env: string | undefined): Role[] {
  const words = (args.length > 0 ? args : (env ?? '').split(/[\s,]+/)).filter((w) => w !== '');
  if (words.length === 0 || words.includes('all')) {
    return [...ROLES];
  }
  const bad = words.filter((w) => !(ROLES as readonly string[]).includes(w));
  if (bad.length > 0) {
    throw new Error(`unknown role(s) ${bad.join(', ')}; expected ${ROLES.join(', ')} or all`);
  }
  return [...new Set(words as Role[])];
}
