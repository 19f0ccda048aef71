import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { register } from 'prom-client';
import { Logger } from 'nestjs-pino';
import { type EngineConfig, loadEngineConfig, loadSettings, type Settings } from '@engine/config';
import { EngineModule } from './engine.module';
import type { Role } from './roles';

export interface StartedEngine {
  app: INestApplicationContext;
  /** The HTTP URL when the api role runs. */
  url?: string;
  /** The metrics URL of a process without the api role when METRICS_PORT is set. */
  metricsUrl?: string;
}

/** GET /metrics (Prometheus text) for a process that serves no API; closed with the app. */
async function serveMetrics(
  app: INestApplicationContext,
  port: number,
  host: string,
): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      register.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': register.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only GET /metrics here\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  server.unref();
  const close = app.close.bind(app);
  app.close = async () => {
    await new Promise((resolve) => server.close(resolve));
    await close();
  };
  const address = server.address() as AddressInfo;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
}

/** Start the given roles in this process. The api role serves HTTP on settings.HTTP_PORT. */
export async function startEngine(
  roles: Role[],
  overrides: { settings?: Settings; engineConfig?: EngineConfig } = {},
): Promise<StartedEngine> {
  const settings = overrides.settings ?? loadSettings();
  const engineConfig = overrides.engineConfig ?? loadEngineConfig(settings.HL7_CONFIG);
  const module = EngineModule.forRoot({ roles, settings, engineConfig });
  if (!roles.includes('api')) {
    const app = await NestFactory.createApplicationContext(module, { bufferLogs: true });
    app.useLogger(app.get(Logger));
    app.enableShutdownHooks();
    await app.init();
    const metricsUrl =
      settings.METRICS_PORT === undefined
        ? undefined
        : await serveMetrics(app, settings.METRICS_PORT, settings.HTTP_HOST);
    return { app, metricsUrl };
  }
  const app = await NestFactory.create(module, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('HL7 engine API')
      .setDescription('Messages, patients, duplicates, deliveries and audit. Bearer API key.')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, doc);
  await app.listen(settings.HTTP_PORT, settings.HTTP_HOST);
  const url = await app.getUrl();
  return { app, url: url.replace('[::1]', '127.0.0.1') };
}
