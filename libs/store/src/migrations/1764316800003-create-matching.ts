import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialectOf } from '../dialect';

/**
 * Duplicate detection tables.
 *
 * - `mpi_block`: the blocking keys of every active source record (phonetic surname + birth date,
 *   SSN, phone, …), so that finding the candidates of a record is one indexed query.
 * - `mpi_duplicate_task`: the medical records technicians' worklist: a pair of source records
 *   (and their persons) whose score fell between the review and auto-link thresholds, with the
 *   field-by-field breakdown, and the decision taken on it. `pair_key` (the two record ids,
 *   sorted) is unique: a pair is never opened twice, and a pair marked `not-duplicate` is never
 *   proposed again.
 */
export class CreateMatching1764316800003 implements MigrationInterface {
  name = 'CreateMatching1764316800003';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = dialectOf(queryRunner.connection) === 'postgres';
    const uuid = pg ? 'uuid' : 'text';
    const json = pg ? 'jsonb' : 'json';
    const ts = pg ? 'timestamptz' : 'datetime';
    const real = pg ? 'double precision' : 'real';
    const q = (sql: string) => queryRunner.query(sql);

    await q(`CREATE TABLE "mpi_block" (
      "key" text NOT NULL,
      "source_record_id" ${uuid} NOT NULL,
      PRIMARY KEY ("key", "source_record_id")
    )`);
    await q(`CREATE INDEX "mpi_block_record_idx" ON "mpi_block" ("source_record_id")`);

    await q(`CREATE TABLE "mpi_duplicate_task" (
      "id" ${uuid} PRIMARY KEY NOT NULL,
      "pair_key" text NOT NULL,
      "left_record_id" ${uuid} NOT NULL,
      "right_record_id" ${uuid} NOT NULL,
      "left_euid" ${uuid} NOT NULL,
      "right_euid" ${uuid} NOT NULL,
      "score" ${real} NOT NULL,
      "breakdown" ${json} NOT NULL,
      "facility" text NOT NULL,
      "status" text NOT NULL,
      "message_id" ${uuid},
      "decided_by" text,
      "decision_reason" text,
      "decided_at" ${ts},
      "created_at" ${ts} NOT NULL,
      "updated_at" ${ts} NOT NULL
    )`);
    await q(
      `CREATE UNIQUE INDEX "mpi_duplicate_task_pair_key" ON "mpi_duplicate_task" ("pair_key")`,
    );
    await q(
      `CREATE INDEX "mpi_duplicate_task_status_idx" ON "mpi_duplicate_task" ("status", "score", "id")`,
    );
    await q(`CREATE INDEX "mpi_duplicate_task_left_idx" ON "mpi_duplicate_task" ("left_euid")`);
    await q(`CREATE INDEX "mpi_duplicate_task_right_idx" ON "mpi_duplicate_task" ("right_euid")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "mpi_duplicate_task"`);
    await queryRunner.query(`DROP TABLE "mpi_block"`);
  }
}
