/**
 * The shared HL7 v2 sample corpus for tests (`import … from '@engine/hl7/testing'`): the files
 * of `../shared/samples/hl7` beside the project root, listed in its MANIFEST.tsv.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { splitMessages } from './batch';

/** The sample folder (read from the sources: tests only). */
export const SAMPLES_DIR = path.resolve(__dirname, '../../../../shared/samples/hl7');

/** One row of MANIFEST.tsv. */
export interface SampleRow {
  file: string;
  /** MSH-9 as the file has it, e.g. `ADT^A01^ADT_A01`. */
  messageType: string;
  /** MSH-12. */
  version: string;
  notes: string;
}

/** The rows of MANIFEST.tsv, in its order (the header line left out). */
export function readManifest(): SampleRow[] {
  return fs
    .readFileSync(path.join(SAMPLES_DIR, 'MANIFEST.tsv'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [file, messageType, version, , , notes] = l.split('\t');
      return { file, messageType, version, notes };
    });
}

/** ADT and ORU samples: the message types libs/mpi normalizes. */
export function isAdtOru(row: SampleRow): boolean {
  return /^(ADT|ORU)\b/.test(row.messageType);
}

/** The bytes of a sample file. */
export function sampleBytes(file: string): Buffer {
  return fs.readFileSync(path.join(SAMPLES_DIR, file));
}

/** The messages of a sample file (a batch file holds several). */
export function sampleMessages(file: string): Buffer[] {
  return splitMessages(sampleBytes(file));
}

/** The first message of a sample file (the only one but in batch files). */
export function sampleMessage(file: string): Buffer {
  return sampleMessages(file)[0];
}
