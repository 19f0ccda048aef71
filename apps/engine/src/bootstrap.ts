import { type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { type EngineConfig, loadEngineConfig, loadSettings, type Settings } from '@engine/config';
import { EngineModule } from './engine.module';
import type { Role } from './roles';

export interface StartedEngine {
  app: INestApplicationContext;
  /** The HTTP URL when the api role runs. */
  url?: string;
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
    return { app };
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
