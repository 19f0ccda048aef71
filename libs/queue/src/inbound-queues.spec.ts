import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadSettings, validateEngineConfig } from '@engine/config';
import { InboundQueues, newestPerPartition } from './inbound-queues';
import { inboundJobId, inboundQueueName } from './names';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('InboundQueues (real Redis)', () => {
  const prefix = `tq${randomBytes(4).toString('hex')}`;
  let queues: InboundQueues;

  beforeAll(() => {
    queues = new InboundQueues(
      loadSettings({ REDIS_URL, QUEUE_PREFIX: prefix }),
      validateEngineConfig({ engine: { partitions: 4 } }),
    );
  });

  afterAll(async () => {
    await queues.onApplicationShutdown();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}:*`);
    if (keys.length > 0) {
      await r.del(...keys);
    }
    r.disconnect();
  });

  async function waiting(partition: number): Promise<string[]> {
    const q = new Queue(inboundQueueName(partition), { connection: { url: REDIS_URL }, prefix });
    try {
      return (await q.getWaiting()).map((j) => j.id!);
    } finally {
      await q.close();
    }
  }

  it('puts each job on its partition queue, in order, with the message id as job id', async () => {
    const items = [
      { messageId: 'a1', feed: 'f', partition: 1 },
      { messageId: 'b1', feed: 'f', partition: 3 },
      { messageId: 'a2', feed: 'f', partition: 1 },
      { messageId: 'a3', feed: 'g', partition: 1 },
    ];
    await queues.enqueue(items);
    expect(await waiting(1)).toEqual([
      inboundJobId('f', 'a1'),
      inboundJobId('f', 'a2'),
      inboundJobId('g', 'a3'),
    ]);
    expect(await waiting(3)).toEqual([inboundJobId('f', 'b1')]);
    expect(await queues.jobsExist(items)).toEqual([true, true, true, true]);
    expect(await queues.jobsExist([{ messageId: 'zz', feed: 'f', partition: 1 }])).toEqual([false]);
  });

  it('re-enqueueing an existing job is a no-op', async () => {
    await queues.enqueue([{ messageId: 'a1', feed: 'f', partition: 1 }]);
    expect((await waiting(1)).filter((id) => id === inboundJobId('f', 'a1'))).toHaveLength(1);
  });

  it('newestLiveJobs: per partition, the newest message id its live jobs reach', async () => {
    const id = (n: number) => `0192f3a4-0000-7000-8000-${String(n).padStart(12, '0')}`;
    await queues.enqueue([
      { messageId: id(2), feed: 'f', partition: 3 },
      { messageId: id(7), feed: 'f', partition: 3 },
      { messageId: id(5), feed: 'g', partition: 3 },
    ]);
    const live = await queues.newestLiveJobs([3, 0]);
    expect(live.get(3)).toBe(id(7));
    expect(live.has(0)).toBe(false); // no job whose id ends in a message id
    expect(await queues.newestLiveJobs([])).toEqual(new Map());
  });

  it('enqueueSoon coalesces into one wake-up job per partition, for the newest message', async () => {
    const errors: Error[] = [];
    const id = (i: number) => `s${String(i).padStart(3, '0')}`;
    for (let i = 0; i < 50; i++) {
      queues.enqueueSoon([{ messageId: id(i), feed: 'f', partition: 2 }], (e) => errors.push(e));
    }
    queues.enqueueSoon([{ messageId: 't1', feed: 'g', partition: 0 }], (e) => errors.push(e));
    const end = Date.now() + 5000;
    while (!(await waiting(2)).includes(inboundJobId('f', id(49))) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // Gathered within the coalescing delay: one job each, for the greatest id.
    expect(await waiting(2)).toEqual([inboundJobId('f', id(49))]);
    expect(await waiting(0)).toEqual([inboundJobId('g', 't1')]);
    expect(errors).toEqual([]);
  });
});

describe('newestPerPartition', () => {
  it('keeps, per partition, the item with the greatest message id, whatever the order', () => {
    expect(
      newestPerPartition([
        { messageId: '0192-b', feed: 'f', partition: 1 },
        { messageId: '0192-a', feed: 'f', partition: 2 },
        { messageId: '0192-c', feed: 'g', partition: 1 },
        { messageId: '0192-a', feed: 'f', partition: 1 },
        { messageId: '0191-z', feed: 'f', partition: 2 },
      ]),
    ).toEqual([
      { messageId: '0192-c', feed: 'g', partition: 1 },
      { messageId: '0192-a', feed: 'f', partition: 2 },
    ]);
    expect(newestPerPartition([])).toEqual([]);
  });
});
