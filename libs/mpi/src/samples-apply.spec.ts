import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import { isAdtOru, readManifest, sampleMessages } from '@engine/hl7/testing';
import { createDataSource, MessageRepository } from '@engine/store';
import { receivedMessage } from '@engine/store/testing';
import { normalizeMessage } from './from-hl7';
import { MpiStore } from './mpi-store';
import { MpiPipeline } from './pipeline';

/**
 * Every ADT and ORU sample of ../shared/samples/hl7 applied to an MPI, in file-name order (the
 * EMAP samples share MRNs: the A17 creates two patients, the A40 then merges one of them), each
 * message in its own batch, as a worker would.
 */
const files = readManifest()
  .filter(isAdtOru)
  .map((r) => r.file)
  .sort();

/** Statuses other than `processed`, and why. */
const NOT_PROCESSED: Record<string, string> = {
  // MSH (+EVN) only: nothing to apply to.
  'hl7apy_adt_a01_v26_msh_only.hl7': 'error:MISSING_PATIENT',
  'nodehl7_adt_a01_v27_msh_only.hl7': 'error:MISSING_PATIENT',
  // The hl7dn A04 samples carry MSH + EVN without a PID (the gateway answers AE 100).
  'hl7dn_adt_a04_v27_blank_line.hl7': 'error:MISSING_PATIENT',
  'hl7dn_adt_a04_v27_explicit_null.hl7': 'error:MISSING_PATIENT',
  'hl7dn_adt_a04_v27_tab_chars.hl7': 'error:MISSING_PATIENT',
  'hl7dn_adt_a08_v24_zsegment_invalid_escape.hl7': 'error:MISSING_PATIENT', // MSH + ZZ1
  // An empty PID: no patient identifier.
  'hl7dn_adt_a04_v27_segment_name_only.hl7': 'error:MISSING_PATIENT_ID',
  // A45 (move visit information) is not applied to the MPI.
  'emap_adt_a45_v24_move_visit_mrg.hl7': 'ignored',
  // v2.1 without a trigger event.
  'medplum_adt_v21_no_trigger.hl7': 'ignored',
};

describe('ADT and ORU samples applied to the MPI', () => {
  let dir: string;
  let ds: DataSource;
  const statuses = new Map<string, string>();

  const q = (sql: string, params: unknown[] = []) =>
    ds.query<Array<Record<string, string | number | null>>>(sql, params);
  const json = <T>(v: unknown) => JSON.parse(String(v)) as T;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(tmpdir(), 'mpi-samples-'));
    ds = createDataSource({ sqlitePath: path.join(dir, 'mpi.sqlite') });
    await ds.initialize();
    const repo = new MessageRepository(ds);
    const pipeline = new MpiPipeline(new MpiStore(ds), {
      survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
    });
    for (const file of files) {
      for (const raw of sampleMessages(file)) {
        const msg = parseMessage(raw);
        const id = uuidv7();
        await repo.insertBatch(
          [
            receivedMessage(raw, {
              id,
              controlId: msg.controlId,
              type: msg.messageType,
              trigger: msg.triggerEvent,
              version: msg.version,
            }),
          ],
          { dedupWindowMs: 0 },
        );
        const { statuses: s } = await pipeline.applyBatch([
          { messageId: id, receivedAt: new Date(), normalized: normalizeMessage(msg) },
        ]);
        statuses.set(file, s[0].status === 'error' ? `error:${s[0].errorCode}` : s[0].status);
      }
    }
  });

  afterAll(async () => {
    await ds.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies every sample: processed, or ignored/error with a reason', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const file of files) {
      expect([file, statuses.get(file)]).toEqual([file, NOT_PROCESSED[file] ?? 'processed']);
    }
  });

  it('A40: the MRG prior record is merged into the survivor, its MRN retired onto it', async () => {
    const [survivor] = await q(
      `SELECT * FROM mpi_source_record WHERE authority = 'MRENTR' AND mrn = '40800001'`,
    );
    const [prior] = await q(
      `SELECT * FROM mpi_source_record WHERE authority = 'MRENTR' AND mrn = '40800000'`,
    );
    expect(prior).toMatchObject({ status: 'merged', merged_into: survivor.id });
    expect(prior.person_euid).toBe(survivor.person_euid);
    const retired = await q(
      `SELECT value, type FROM mpi_identifier WHERE source_record_id = ? AND retired = 1`,
      [survivor.id],
    );
    expect(retired).toContainEqual({ value: '40800000', type: 'MEDREC' });
    // The encounter the A17 gave the prior record now belongs to the survivor.
    const encounters = await q(`SELECT * FROM mpi_encounter WHERE origin_record_id = ?`, [
      prior.id,
    ]);
    expect(encounters.length).toBeGreaterThan(0);
    expect(encounters.every((e) => e.source_record_id === survivor.id)).toBe(true);
    const [event] = await q(`SELECT payload FROM mpi_event WHERE type = 'patient.merged'`);
    expect(json(event.payload)).toMatchObject({
      survivor: { authority: 'MRENTR', mrn: '40800001' },
      retired: { authority: 'MRENTR', mrn: '40800000' },
    });
  });

  it('A17: both patients have their encounter with the swapped location', async () => {
    const [rec] = await q(
      `SELECT id FROM mpi_source_record WHERE authority = 'MRENTR' AND mrn = '30700000'`,
    );
    const [enc] = await q(`SELECT data FROM mpi_encounter WHERE source_record_id = ?`, [rec.id]);
    expect(json<{ location: { pointOfCare: string } }>(enc.data).location.pointOfCare).toBe('T12S');
  });

  it('ORU: the NIST lead result with its LOINC code and value; results raise result.created', async () => {
    const rows = await q(`SELECT data FROM mpi_result`);
    const data = rows.map((r) =>
      json<{ observations: Array<{ code?: { system?: string }; value?: { kind: string } }> }>(
        r.data,
      ),
    );
    expect(
      data.some((d) => d.observations.some((o) => o.code?.system === 'LOINC' && o.value)),
    ).toBe(true);
    const [{ n }] = await q(`SELECT count(*) AS n FROM mpi_event WHERE type = 'result.created'`);
    expect(Number(n)).toBe(rows.length);
  });

  it('every person has a golden record with provenance; names decoded from 8859/1', async () => {
    const persons = await q(`SELECT golden, provenance, status FROM mpi_person`);
    expect(persons.length).toBeGreaterThan(10);
    for (const p of persons.filter((x) => x.status === 'active')) {
      const golden = json<Record<string, unknown>>(p.golden);
      const provenance = json<Record<string, { rule: string }>>(p.provenance);
      expect(Object.keys(provenance).sort()).toEqual(Object.keys(golden).sort());
    }
    const families = persons.map(
      (p) => json<{ name?: { family?: string } }>(p.golden).name?.family,
    );
    expect(families.some((f) => f !== undefined && /[^\u0020-\u007e]/.test(f))).toBe(true);
  });
});
