import type { InsertResult, NewMessage } from '@engine/store';
import { GroupCommitter } from './group-committer';

function row(id: string): NewMessage {
  return {
    id,
    feed: 'f',
    controlId: id,
    type: 'ADT',
    trigger: 'A01',
    version: '2.5',
    sendingApplication: '',
    sendingFacility: '',
    receivingApplication: '',
    receivingFacility: '',
    receivedAt: new Date(),
    remoteAddress: '',
    partition: 0,
    partitionKey: '',
    raw: Buffer.from(id),
    contentHash: id,
    status: 'received',
  };
}

/** A store whose commits complete only when the test says so. */
class ManualStore {
  calls: { rows: NewMessage[]; done: (r: InsertResult[] | Error) => void }[] = [];
  insertBatch(rows: NewMessage[]): Promise<InsertResult[]> {
    return new Promise((resolve, reject) => {
      this.calls.push({
        rows,
        done: (r) => (r instanceof Error ? reject(r) : resolve(r)),
      });
    });
  }
}

const ok = (rows: NewMessage[]): InsertResult[] =>
  rows.map((r) => ({ id: r.id, duplicate: false }));

describe('GroupCommitter', () => {
  it('writes rows that arrive during a commit together in the next transaction', async () => {
    const store = new ManualStore();
    const gc = new GroupCommitter(store, { maxBatch: 100, maxInflight: 1 });
    const first = gc.submit(row('a'), 0);
    const rest = ['b', 'c', 'd'].map((id) => gc.submit(row(id), 0));
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0].rows.map((r) => r.id)).toEqual(['a']);
    store.calls[0].done(ok(store.calls[0].rows));
    await expect(first).resolves.toEqual({ id: 'a', duplicate: false });
    expect(store.calls).toHaveLength(2);
    expect(store.calls[1].rows.map((r) => r.id)).toEqual(['b', 'c', 'd']);
    store.calls[1].done(ok(store.calls[1].rows));
    await expect(Promise.all(rest)).resolves.toHaveLength(3);
    expect(gc.stats).toMatchObject({ batches: 2, rows: 4 });
  });

  it('does not resolve before the commit, and rejects every row of a failed batch', async () => {
    const store = new ManualStore();
    const gc = new GroupCommitter(store, { maxBatch: 100, maxInflight: 1 });
    let settled = false;
    const p = gc.submit(row('a'), 0).finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    store.calls[0].done(new Error('db down'));
    await expect(p).rejects.toThrow('db down');
  });

  it('respects maxBatch and maxInflight', () => {
    const store = new ManualStore();
    const gc = new GroupCommitter(store, { maxBatch: 2, maxInflight: 2 });
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) {
      void gc.submit(row(id), 0).catch(() => undefined);
    }
    expect(store.calls.map((c) => c.rows.length)).toEqual([1, 1]);
    expect(gc.queued).toBe(4);
  });

  it('reports committed batches to onCommitted before callers resume', async () => {
    const store = new ManualStore();
    const seen: string[] = [];
    const gc = new GroupCommitter(store, {
      maxBatch: 10,
      maxInflight: 1,
      onCommitted: (rows) => seen.push(...rows.map((r) => r.id)),
    });
    const p = gc.submit(row('a'), 0).then(() => seen.slice());
    store.calls[0].done(ok(store.calls[0].rows));
    await expect(p).resolves.toEqual(['a']);
  });

  it('when a batch fails, retries its rows one by one so that only the bad row fails', async () => {
    const store = new ManualStore();
    const gc = new GroupCommitter(store, { maxBatch: 10, maxInflight: 1 });
    const first = gc.submit(row('a'), 0);
    const good = gc.submit(row('good'), 0);
    const bad = gc.submit(row('bad'), 0);
    store.calls[0].done(ok(store.calls[0].rows));
    await first;
    expect(store.calls[1].rows.map((r) => r.id)).toEqual(['good', 'bad']);
    store.calls[1].done(new Error('invalid byte sequence'));
    await new Promise((r) => setImmediate(r));
    const singles = store.calls.slice(2);
    expect(singles.map((c) => c.rows.map((r) => r.id))).toEqual([['good'], ['bad']]);
    singles[0].done(ok(singles[0].rows));
    singles[1].done(new Error('invalid byte sequence'));
    await expect(good).resolves.toEqual({ id: 'good', duplicate: false });
    await expect(bad).rejects.toThrow('invalid byte sequence');
    expect(gc.stats.splitRetries).toBe(1);
  });

  it('reports batches to onCommitted in submission order even when they commit out of order', async () => {
    const store = new ManualStore();
    const seen: string[] = [];
    const gc = new GroupCommitter(store, {
      maxBatch: 10,
      maxInflight: 2,
      onCommitted: (rows) => seen.push(...rows.map((r) => r.id)),
    });
    const a = gc.submit(row('a'), 0);
    const b = gc.submit(row('b'), 0);
    expect(store.calls).toHaveLength(2);
    store.calls[1].done(ok(store.calls[1].rows)); // b commits first
    await b;
    expect(seen).toEqual([]); // held until a is reported
    store.calls[0].done(ok(store.calls[0].rows));
    await a;
    expect(seen).toEqual(['a', 'b']);
  });
});
