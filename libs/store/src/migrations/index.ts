import { CreateMessage1764316800000 } from './1764316800000-create-message';
import { CreateAuditLog1764316800001 } from './1764316800001-create-audit-log';

/** Every migration of the store, oldest first. Append; never edit a shipped one. */
export const storeMigrations = [CreateMessage1764316800000, CreateAuditLog1764316800001];
