import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialectOf } from '../dialect';

/**
 * Routing and delivery tables.
 *
 * - `delivery`: one row per (message or MPI event, route, destination), written in the same
 *   transaction as the MPI changes that produced it. `dedupe_key` is unique per destination, so
 *   a retried or replayed message never delivers twice. `lane` orders one patient's deliveries
 *   to one destination (delivered one at a time in id order); the pending ones are read in id
 *   order per destination (`delivery_pending_idx`); the row records status, attempts,
 *   the last error, the remote answer (MSA-1 / HTTP status) and the latency.
 * - `destination_state`: a destination paused (or resumed) through the API, shared by every
 *   worker process and kept across restarts.
 */
export class CreateDelivery1764316800004 implements MigrationInterface {
  name = 'CreateDelivery1764316800004';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = dialectOf(queryRunner.connection) === 'postgres';
    const uuid = pg ? 'uuid' : 'text';
    const json = pg ? 'jsonb' : 'json';
    const ts = pg ? 'timestamptz' : 'datetime';
    const q = (sql: string) => queryRunner.query(sql);

    await q(`CREATE TABLE "delivery" (
      ${pg ? `"id" bigserial PRIMARY KEY` : `"id" integer PRIMARY KEY AUTOINCREMENT`},
      "destination" text NOT NULL,
      "route" text NOT NULL,
      "lane" integer NOT NULL,
      "kind" text NOT NULL,
      "message_id" ${uuid},
      "event_type" text,
      "event_key" text,
      "euid" ${uuid},
      "payload" ${json},
      "dedupe_key" text NOT NULL,
      "status" text NOT NULL,
      "attempts" integer NOT NULL DEFAULT 0,
      "redeliveries" integer NOT NULL DEFAULT 0,
      "last_error" text,
      "remote_ack" text,
      "latency_ms" integer,
      "created_at" ${ts} NOT NULL,
      "next_attempt_at" ${ts} NOT NULL,
      "delivered_at" ${ts},
      "updated_at" ${ts} NOT NULL
    )`);
    await q(
      `CREATE UNIQUE INDEX "delivery_dedupe_idx" ON "delivery" ("destination", "dedupe_key")`,
    );
    await q(
      `CREATE INDEX "delivery_pending_idx" ON "delivery" ("destination", "id") WHERE "status" = 'pending'`,
    );
    // Deliveries waiting for a retry (next_attempt_at in the future) are few: found without
    // reading the backlog.
    await q(
      `CREATE INDEX "delivery_due_idx" ON "delivery" ("destination", "next_attempt_at") WHERE "status" = 'pending'`,
    );
    await q(`CREATE INDEX "delivery_status_idx" ON "delivery" ("status", "destination", "id")`);
    await q(`CREATE INDEX "delivery_message_idx" ON "delivery" ("message_id")`);

    await q(`CREATE TABLE "destination_state" (
      "id" text PRIMARY KEY NOT NULL,
      "paused" boolean NOT NULL,
      "changed_by" text NOT NULL,
      "reason" text NOT NULL,
      "changed_at" ${ts} NOT NULL
    )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "destination_state"`);
    await queryRunner.query(`DROP TABLE "delivery"`);
  }
}
