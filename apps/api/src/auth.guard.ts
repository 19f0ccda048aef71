import { timingSafeEqual } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { Request } from 'express';
import { SETTINGS, type Settings } from '@engine/config';

/** The caller behind a request, for audit records. */
export interface Principal {
  id: string;
  role: 'admin';
}

export type AuthedRequest = Request & { principal?: Principal };

/**
 * `Authorization: Bearer <key>`. The admin key is bootstrapped from ADMIN_API_KEY; with no key
 * configured every /api request is refused (the engine never runs an open API).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly adminKey?: Buffer;

  constructor(@Inject(SETTINGS) settings: Settings) {
    this.adminKey = settings.ADMIN_API_KEY ? Buffer.from(settings.ADMIN_API_KEY) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new UnauthorizedException('missing Authorization: Bearer <api key>');
    }
    const given = Buffer.from(match[1]);
    if (
      !this.adminKey ||
      given.length !== this.adminKey.length ||
      !timingSafeEqual(given, this.adminKey)
    ) {
      throw new UnauthorizedException('invalid API key');
    }
    req.principal = { id: 'admin', role: 'admin' };
    return true;
  }
}
