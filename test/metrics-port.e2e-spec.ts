import { startTestEngine, type TestEngine } from './support/engine';

describe('METRICS_PORT: a worker without the api role serves its own metrics', () => {
  let engine: TestEngine;

  beforeAll(async () => {
    engine = await startTestEngine({ roles: ['worker'], env: { METRICS_PORT: '0' } });
  });
  afterAll(() => engine.close());

  it('serves GET /metrics with the pipeline and delivery series, and nothing else', async () => {
    expect(engine.url).toBeUndefined();
    expect(engine.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${engine.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE hl7_pipeline_messages_total counter');
    expect(text).toContain('# TYPE hl7_delivery_outcomes_total counter');
    expect((await fetch(`${engine.metricsUrl}/api/messages`)).status).toBe(404);
  });
});
