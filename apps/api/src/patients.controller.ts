import {
  BadRequestException,
  Controller,
  Get,
  NotFoundException,
  Param,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  MAX_PATIENT_SEARCH_LIMIT,
  type PatientPage,
  PatientReader,
  PatientReaderError,
  type PatientSearch,
  PERSON_STATUSES,
  type PersonStatus,
  type PersonView,
} from '@engine/mpi';
import { ApiKeyGuard, type AuthedRequest } from './auth.guard';
import { AuditService } from './audit.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Query parameters and their aliases (`name` for family, `dob` for birthDate). */
const ALIASES = { family: 'name', birthDate: 'dob' } as const;

type RawQuery = Record<string, unknown>;

/**
 * Patients of the master patient index: search and the full view of one person. Every read is
 * PHI, so every call that returns data writes an audit record (search criteria by name only,
 * never their values). Nothing here logs request values.
 */
@ApiTags('patients')
@ApiBearerAuth()
@UseGuards(ApiKeyGuard)
@Controller('api/patients')
export class PatientsController {
  constructor(
    private readonly patients: PatientReader,
    private readonly audit: AuditService,
  ) {}

  /**
   * Search persons (active ones unless `status` says otherwise), ordered by EUID. Give at least
   * one of identifier, family (name) or birthDate (dob). An identifier of a merged record or
   * person finds the surviving person.
   */
  @Get()
  @ApiQuery({ name: 'identifier', required: false, description: 'identifier value or MRN' })
  @ApiQuery({
    name: 'authority',
    required: false,
    description: 'assigning authority of identifier',
  })
  @ApiQuery({ name: 'family', required: false, description: 'family name prefix (alias: name)' })
  @ApiQuery({ name: 'given', required: false, description: 'given name prefix' })
  @ApiQuery({ name: 'birthDate', required: false, description: 'YYYY-MM-DD (alias: dob)' })
  @ApiQuery({ name: 'status', required: false, enum: [...PERSON_STATUSES, 'any'] })
  @ApiQuery({ name: 'limit', required: false, description: `1..${MAX_PATIENT_SEARCH_LIMIT}` })
  @ApiQuery({ name: 'cursor', required: false })
  @ApiOkResponse({ description: '{ items: PatientSummary[], nextCursor?: string }' })
  async search(@Query() query: RawQuery, @Req() req: AuthedRequest): Promise<PatientPage> {
    const one = (name: string): string | undefined => {
      const value = query[name];
      if (value !== undefined && typeof value !== 'string') {
        throw new BadRequestException(`${name} must be given once`);
      }
      return value === undefined || value.trim() === '' ? undefined : value;
    };
    const aliased = (name: keyof typeof ALIASES): string | undefined => {
      const value = one(name);
      const alias = one(ALIASES[name]);
      if (value !== undefined && alias !== undefined && value !== alias) {
        throw new BadRequestException(`give ${name} or ${ALIASES[name]}, not both`);
      }
      return value ?? alias;
    };
    const q: PatientSearch = {
      identifier: one('identifier'),
      authority: one('authority'),
      family: aliased('family'),
      given: one('given'),
      birthDate: aliased('birthDate'),
      cursor: one('cursor'),
    };
    const status = one('status');
    if (status !== undefined) {
      if (status !== 'any' && !(PERSON_STATUSES as readonly string[]).includes(status)) {
        throw new BadRequestException(`status must be one of ${PERSON_STATUSES.join(', ')}, any`);
      }
      q.status = status as PersonStatus | 'any';
    }
    const limit = one('limit');
    if (limit !== undefined) {
      const n = Number(limit);
      if (!/^\d+$/.test(limit.trim()) || n < 1 || n > MAX_PATIENT_SEARCH_LIMIT) {
        throw new BadRequestException(
          `limit must be an integer from 1 to ${MAX_PATIENT_SEARCH_LIMIT}`,
        );
      }
      q.limit = n;
    }
    let page: PatientPage;
    try {
      page = await this.patients.search(q);
    } catch (err) {
      if (err instanceof PatientReaderError) {
        throw new BadRequestException(err.message);
      }
      throw err;
    }
    // Criteria names only: their values are PHI.
    const criteria = (['identifier', 'authority', 'family', 'given', 'birthDate'] as const)
      .filter((name) => q[name] !== undefined)
      .join(',');
    await this.audit.record(req, 'patient.search', 'person', criteria);
    return page;
  }

  /** One person: golden record (SSN masked), identifiers, source records, encounters, results. */
  @Get(':euid')
  @ApiOkResponse({ description: 'PersonView' })
  async get(@Param('euid') euid: string, @Req() req: AuthedRequest): Promise<PersonView> {
    if (!UUID.test(euid)) {
      throw new BadRequestException('euid must be an enterprise id (UUID)');
    }
    const person = await this.patients.getPerson(euid);
    if (!person) {
      throw new NotFoundException(`person ${euid} not found`);
    }
    await this.audit.record(req, 'patient.read', 'person', person.euid);
    return person;
  }
}
