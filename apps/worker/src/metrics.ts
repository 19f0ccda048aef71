import { Counter, Gauge, Histogram } from 'prom-client';
import type { DrainStats } from './pipeline.service';

/** Pipeline metrics, in prom-client's default registry (served at GET /metrics). */
const metrics = {
  messages: new Counter({
    name: 'hl7_pipeline_messages_total',
    help: 'Messages applied to the MPI, by final status (processed, ignored, error)',
    labelNames: ['status'] as const,
  }),
  events: new Counter({
    name: 'hl7_pipeline_events_total',
    help: 'Domain events written to the outbox',
  }),
  drainSeconds: new Histogram({
    name: 'hl7_pipeline_drain_seconds',
    help: 'Time to apply one fetch of jobs (one or more batches) of a partition',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }),
  partitionsOwned: new Gauge({
    name: 'hl7_pipeline_partitions_owned',
    help: 'Inbound partitions leased by this worker process',
  }),
  held: new Gauge({
    name: 'hl7_pipeline_partition_held',
    help: '1 while a failed message holds the partition (failure policy hold)',
    labelNames: ['partition'] as const,
  }),
};

export function pipelineMetrics() {
  return {
    ...metrics,
    record(stats: DrainStats, seconds: number): void {
      metrics.messages.inc({ status: 'processed' }, stats.processed);
      metrics.messages.inc({ status: 'ignored' }, stats.ignored);
      metrics.messages.inc({ status: 'error' }, stats.errors);
      metrics.events.inc(stats.events);
      metrics.drainSeconds.observe(seconds);
    },
  };
}

const delivery = {
  outcomes: new Counter({
    name: 'hl7_delivery_outcomes_total',
    help: 'Delivery attempts by destination and outcome (delivered, retry, dead, skipped)',
    labelNames: ['destination', 'outcome'] as const,
  }),
  sendSeconds: new Histogram({
    name: 'hl7_delivery_send_seconds',
    help: 'Time of one send (until the remote answer), by destination',
    labelNames: ['destination'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
  latency: new Histogram({
    name: 'hl7_delivery_latency_seconds',
    help: 'From the delivery being committed to the destination accepting it, by destination',
    labelNames: ['destination'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  }),
};

export function deliveryMetrics() {
  return delivery;
}
