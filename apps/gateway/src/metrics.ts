import { Counter, Gauge, Histogram } from 'prom-client';

/** Gateway metrics, registered in prom-client's default registry (served at GET /metrics). */
export const gatewayMetrics = {
  messages: new Counter({
    name: 'hl7_gateway_messages_total',
    help: 'Framed messages received, by feed and outcome (accepted, duplicate, rejected, failed)',
    labelNames: ['feed', 'outcome'] as const,
  }),
  batches: new Counter({
    name: 'hl7_gateway_batches_total',
    help: 'Frames holding an HL7 batch (FHS/BHS), answered with a batch of ACKs, by feed',
    labelNames: ['feed'] as const,
  }),
  ackLatency: new Histogram({
    name: 'hl7_gateway_ack_seconds',
    help: 'Time from a complete frame to its ACK written, by feed',
    labelNames: ['feed'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }),
  commitBatch: new Histogram({
    name: 'hl7_gateway_commit_batch_rows',
    help: 'Rows per group-commit transaction',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  }),
  enqueueFailures: new Counter({
    name: 'hl7_gateway_enqueue_failures_total',
    help: 'Committed messages whose enqueue failed (the sweeper re-enqueues them)',
  }),
  swept: new Counter({
    name: 'hl7_gateway_swept_total',
    help: 'Committed messages of the partitions the sweeper woke (no live job covered them)',
  }),
  connections: new Gauge({
    name: 'hl7_gateway_connections',
    help: 'Open MLLP connections, by feed',
    labelNames: ['feed'] as const,
  }),
  noiseBytes: new Counter({
    name: 'hl7_gateway_noise_bytes_total',
    help: 'Bytes received outside MLLP frames and discarded, by feed',
    labelNames: ['feed'] as const,
  }),
  oversize: new Counter({
    name: 'hl7_gateway_oversize_frames_total',
    help: 'Frames larger than the feed maximum, discarded and answered with AR, by feed',
    labelNames: ['feed'] as const,
  }),
  closedNotHl7: new Counter({
    name: 'hl7_gateway_connections_closed_not_hl7_total',
    help: 'Connections closed because they sent too many bytes that are not MLLP-framed HL7',
    labelNames: ['feed'] as const,
  }),
};
