import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialectOf } from '../dialect';

/**
 * Creates the `message` table (one row per framed payload) and its indexes. The unique index
 * `message_resend_key` makes an identical insert conflict (see MessageRepository.insertBatch).
 * PostgreSQL: uuid / timestamptz / bytea. SQLite: text / datetime (UTC text
 * 'YYYY-MM-DD HH:MM:SS.SSS', ordered as text) / blob, written in the form TypeORM itself
 * generates, so that the entity mapping and the schema compare equal.
 */
export class CreateMessage1764316800000 implements MigrationInterface {
  name = 'CreateMessage1764316800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = dialectOf(queryRunner.connection) === 'postgres';
    const ts = pg ? 'timestamptz' : 'datetime';
    // SQLite keeps the default expression text as written; TypeORM writes it in parentheses.
    const dflt = (value: string) => (pg ? `DEFAULT ${value}` : `DEFAULT (${value})`);
    const text = `text NOT NULL ${dflt("''")}`;
    const id = pg ? `"id" uuid NOT NULL` : `"id" text PRIMARY KEY NOT NULL`;
    const now = pg ? 'now()' : "(strftime('%Y-%m-%d %H:%M:%f','now'))";
    await queryRunner.query(
      `CREATE TABLE "message" (
      ${id},
      "feed" text NOT NULL,
      "control_id" ${text},
      "type" ${text},
      "trigger" ${text},
      "version" ${text},
      "sending_application" ${text},
      "sending_facility" ${text},
      "receiving_application" ${text},
      "receiving_facility" ${text},
      "received_at" ${ts} NOT NULL,
      "remote_address" ${text},
      "partition" integer NOT NULL ${dflt('0')},
      "partition_key" ${text},
      "raw" ${pg ? 'bytea' : 'blob'} NOT NULL,
      "content_hash" text NOT NULL,
      "status" text NOT NULL,
      "error_code" text,
      "error_reason" text,
      "ack_code" text,
      "processed_at" ${ts},
      "updated_at" ${ts} NOT NULL ${dflt(now)},
      "resend_generation" integer NOT NULL ${dflt('0')}` +
        (pg ? `,\n      CONSTRAINT "message_pkey" PRIMARY KEY ("id")` : '') +
        `\n    )`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "message_resend_key" ON "message" ` +
        `("control_id", "feed", "sending_facility", "content_hash", "resend_generation")`,
    );
    await queryRunner.query(
      `CREATE INDEX "message_status_received_at_idx" ON "message" ("status", "received_at", "id")`,
    );
    await queryRunner.query(
      `CREATE INDEX "message_received_at_idx" ON "message" ("received_at", "id")`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "message_received_at_idx"`);
    await queryRunner.query(`DROP INDEX "message_status_received_at_idx"`);
    await queryRunner.query(`DROP INDEX "message_resend_key"`);
    await queryRunner.query(`DROP TABLE "message"`);
  }
}
