import type { GoldenField, SurvivorshipRule } from '@engine/config';
import type {
  Address,
  DateValue,
  Deceased,
  MultipleBirth,
  PatientRecord,
  PersonName,
  Sex,
  Telecom,
} from './model';

/**
 * The golden record of a person: for each field, the one value survivorship chose among the
 * person's active source records. Stored as JSON in `mpi_person.golden`.
 */
export interface GoldenRecord {
  /** The chosen name (a record's first legal name, else its first name). */
  name?: PersonName;
  birthDate?: DateValue;
  sex?: Sex;
  /** The chosen address (a record's first home address, else its first address). */
  address?: Address;
  /** The chosen record's phones and e-mail addresses, as a whole. */
  telecom?: Telecom[];
  /** Digits only; masked in API output. */
  ssn?: string;
  mothersMaidenName?: PersonName;
  race?: string[];
  ethnicity?: string[];
  language?: string;
  maritalStatus?: string;
  multipleBirth?: MultipleBirth;
  deceased?: Deceased;
}

/** Which rule chose a golden field, and from which source record. */
export interface FieldProvenance {
  /** The configured rule; `only` when a single record had a value. */
  rule: SurvivorshipRule | 'only';
  sourceRecordId: string;
  authority: string;
  mrn: string;
}

/** Stored as JSON in `mpi_person.provenance`. */
export type Provenance = Partial<Record<GoldenField, FieldProvenance>>;

/** One active source record of a person, as survivorship sees it. */
export interface SurvivorshipInput {
  id: string;
  authority: string;
  mrn: string;
  /** Epoch ms of the newest message applied to the record (EVN-2/MSH-7, else receipt time). */
  dataTime: number;
  data: PatientRecord;
}

export interface GoldenResult {
  golden: GoldenRecord;
  provenance: Provenance;
}
