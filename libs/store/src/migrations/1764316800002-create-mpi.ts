import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialectOf } from '../dialect';

/**
 * Creates the master patient index tables and what the pipeline worker needs on `message`.
 *
 * - `mpi_person`: one row per person (EUID), with the golden record and, per field, the rule and
 *   source record that chose it (`provenance`); search columns are copies of golden values.
 * - `mpi_source_record`: what one assigning authority + MRN says about a patient; belongs to one
 *   person; `data_time` (epoch ms of EVN-2/MSH-7) is how stale messages are recognised.
 * - `mpi_identifier`: every identifier of a source record (PID-2/3/4/19, and those retired onto
 *   it by merges), for lookups by value.
 * - `mpi_encounter` / `mpi_result`: keyed by the record they arrived for (`origin_record_id`) and
 *   the visit number / order key; `source_record_id` is the record that owns them now (a merge
 *   moves them without breaking the key).
 * - `mpi_event`: the transactional outbox of domain events.
 * - `mpi_history`: every merge, link, unlink, identifier change and deletion with its before
 *   state (what an unmerge needs).
 * - `message.held`, and a partial index over each partition's pending messages in arrival order.
 *
 * Written by hand for both dialects (PostgreSQL: uuid, jsonb, timestamptz, bigint; SQLite: text,
 * json, datetime, integer). The MPI tables are reached through raw SQL (libs/mpi), not entities.
 */
export class CreateMpi1764316800002 implements MigrationInterface {
  name = 'CreateMpi1764316800002';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = dialectOf(queryRunner.connection) === 'postgres';
    const uuid = pg ? 'uuid' : 'text';
    const json = pg ? 'jsonb' : 'json';
    const ts = pg ? 'timestamptz' : 'datetime';
    const big = pg ? 'bigint' : 'integer';
    const dflt = (value: string) => (pg ? `DEFAULT ${value}` : `DEFAULT (${value})`);
    const text = `text NOT NULL ${dflt("''")}`;
    const q = (sql: string) => queryRunner.query(sql);

    await q(`ALTER TABLE "message" ADD COLUMN "held" boolean NOT NULL ${dflt(pg ? 'false' : '0')}`);
    await q(
      `CREATE INDEX "message_pending_idx" ON "message" ("partition", "id") WHERE "status" = 'received'`,
    );
    await q(`CREATE INDEX "message_held_idx" ON "message" ("partition") WHERE "held"`);

    await q(`CREATE TABLE "mpi_person" (
      "euid" ${uuid} PRIMARY KEY NOT NULL,
      "status" text NOT NULL,
      "merged_into" ${uuid},
      "golden" ${json} NOT NULL,
      "provenance" ${json} NOT NULL,
      "family_name" ${text},
      "given_name" ${text},
      "birth_date" ${text},
      "sex" ${text},
      "version" integer NOT NULL,
      "created_at" ${ts} NOT NULL,
      "updated_at" ${ts} NOT NULL
    )`);
    await q(`CREATE INDEX "mpi_person_name_idx" ON "mpi_person" ("family_name", "given_name")`);
    await q(`CREATE INDEX "mpi_person_birth_date_idx" ON "mpi_person" ("birth_date")`);

    await q(`CREATE TABLE "mpi_source_record" (
      "id" ${uuid} PRIMARY KEY NOT NULL,
      "authority" text NOT NULL,
      "mrn" text NOT NULL,
      "person_euid" ${uuid} NOT NULL,
      "status" text NOT NULL,
      "merged_into" ${uuid},
      "data" ${json} NOT NULL,
      "data_time" ${big} NOT NULL,
      "last_message_id" ${uuid},
      "version" integer NOT NULL,
      "created_at" ${ts} NOT NULL,
      "updated_at" ${ts} NOT NULL
    )`);
    await q(
      `CREATE UNIQUE INDEX "mpi_source_record_key" ON "mpi_source_record" ("authority", "mrn")`,
    );
    await q(`CREATE INDEX "mpi_source_record_person_idx" ON "mpi_source_record" ("person_euid")`);

    await q(`CREATE TABLE "mpi_identifier" (
      "source_record_id" ${uuid} NOT NULL,
      "authority" text NOT NULL,
      "value" text NOT NULL,
      "type" text NOT NULL,
      "retired" boolean NOT NULL,
      PRIMARY KEY ("source_record_id", "authority", "value", "type")
    )`);
    await q(`CREATE INDEX "mpi_identifier_value_idx" ON "mpi_identifier" ("value", "authority")`);

    await q(`CREATE TABLE "mpi_encounter" (
      "id" ${uuid} PRIMARY KEY NOT NULL,
      "origin_record_id" ${uuid} NOT NULL,
      "visit_key" text NOT NULL,
      "source_record_id" ${uuid} NOT NULL,
      "status" text NOT NULL,
      "data" ${json} NOT NULL,
      "data_time" ${big} NOT NULL,
      "created_at" ${ts} NOT NULL,
      "updated_at" ${ts} NOT NULL
    )`);
    await q(
      `CREATE UNIQUE INDEX "mpi_encounter_key" ON "mpi_encounter" ("origin_record_id", "visit_key")`,
    );
    await q(`CREATE INDEX "mpi_encounter_record_idx" ON "mpi_encounter" ("source_record_id")`);

    await q(`CREATE TABLE "mpi_result" (
      "id" ${uuid} PRIMARY KEY NOT NULL,
      "origin_record_id" ${uuid} NOT NULL,
      "order_key" text NOT NULL,
      "source_record_id" ${uuid} NOT NULL,
      "status" text NOT NULL,
      "data" ${json} NOT NULL,
      "data_time" ${big} NOT NULL,
      "created_at" ${ts} NOT NULL,
      "updated_at" ${ts} NOT NULL
    )`);
    await q(
      `CREATE UNIQUE INDEX "mpi_result_key" ON "mpi_result" ("origin_record_id", "order_key")`,
    );
    await q(`CREATE INDEX "mpi_result_record_idx" ON "mpi_result" ("source_record_id")`);

    await q(`CREATE TABLE "mpi_event" (
      ${pg ? `"id" bigserial PRIMARY KEY` : `"id" integer PRIMARY KEY AUTOINCREMENT`},
      "type" text NOT NULL,
      "euid" ${uuid},
      "message_id" ${uuid},
      "payload" ${json} NOT NULL,
      "created_at" ${ts} NOT NULL,
      "dispatched_at" ${ts}
    )`);
    await q(`CREATE INDEX "mpi_event_message_idx" ON "mpi_event" ("message_id")`);
    await q(`CREATE INDEX "mpi_event_euid_idx" ON "mpi_event" ("euid", "id")`);
    await q(
      `CREATE INDEX "mpi_event_pending_idx" ON "mpi_event" ("id") WHERE "dispatched_at" IS NULL`,
    );

    await q(`CREATE TABLE "mpi_history" (
      "id" ${uuid} PRIMARY KEY NOT NULL,
      "kind" text NOT NULL,
      "survivor_euid" ${uuid},
      "subject_euid" ${uuid},
      "source_record_id" ${uuid},
      "message_id" ${uuid},
      "actor" text NOT NULL,
      "reason" ${text},
      "before" ${json} NOT NULL,
      "created_at" ${ts} NOT NULL
    )`);
    await q(`CREATE INDEX "mpi_history_survivor_idx" ON "mpi_history" ("survivor_euid")`);
    await q(`CREATE INDEX "mpi_history_subject_idx" ON "mpi_history" ("subject_euid")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'mpi_history',
      'mpi_event',
      'mpi_result',
      'mpi_encounter',
      'mpi_identifier',
      'mpi_source_record',
      'mpi_person',
    ]) {
      await queryRunner.query(`DROP TABLE "${table}"`);
    }
    await queryRunner.query(`DROP INDEX "message_held_idx"`);
    await queryRunner.query(`DROP INDEX "message_pending_idx"`);
    await queryRunner.query(`ALTER TABLE "message" DROP COLUMN "held"`);
  }
}
