import { CreateMessage1764316800000 } from './1764316800000-create-message';
import { CreateAuditLog1764316800001 } from './1764316800001-create-audit-log';
import { CreateMpi1764316800002 } from './1764316800002-create-mpi';
import { CreateMatching1764316800003 } from './1764316800003-create-matching';
import { CreateDelivery1764316800004 } from './1764316800004-create-delivery';

/** Every migration of the store, oldest first. Append; never edit a shipped one. */
export const storeMigrations = [
  CreateMessage1764316800000,
  CreateAuditLog1764316800001,
  CreateMpi1764316800002,
  CreateMatching1764316800003,
  CreateDelivery1764316800004,
];
