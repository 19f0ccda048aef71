import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialectOf } from '../dialect';

/** Creates `audit_log`: who read or decided what, when (append-only). */
export class CreateAuditLog1764316800001 implements MigrationInterface {
  name = 'CreateAuditLog1764316800001';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = dialectOf(queryRunner.connection) === 'postgres';
    const id = pg ? `"id" uuid NOT NULL` : `"id" text PRIMARY KEY NOT NULL`;
    await queryRunner.query(
      `CREATE TABLE "audit_log" (
      ${id},
      "at" ${pg ? 'timestamptz' : 'datetime'} NOT NULL,
      "actor" text NOT NULL,
      "action" text NOT NULL,
      "entity_type" text NOT NULL,
      "entity_id" text NOT NULL,
      "remote_address" text NOT NULL ${pg ? "DEFAULT ''" : "DEFAULT ('')"},
      "details" ${pg ? 'jsonb' : 'json'}` +
        (pg ? `,\n      CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")` : '') +
        `\n    )`,
    );
    await queryRunner.query(
      `CREATE INDEX "audit_log_entity_idx" ON "audit_log" ("entity_type", "entity_id", "at")`,
    );
    await queryRunner.query(`CREATE INDEX "audit_log_at_idx" ON "audit_log" ("at", "id")`);
    await queryRunner.query(`CREATE INDEX "audit_log_actor_idx" ON "audit_log" ("actor", "at")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "audit_log_actor_idx"`);
    await queryRunner.query(`DROP INDEX "audit_log_at_idx"`);
    await queryRunner.query(`DROP INDEX "audit_log_entity_idx"`);
    await queryRunner.query(`DROP TABLE "audit_log"`);
  }
}
