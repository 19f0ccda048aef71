import { parseMessage } from './parse';
import { patientKeys } from './keys';

const msh = 'MSH|^~\\&|APP|FAC|ENGINE|DEST|20240101120000||ADT^A40|C1|P|2.5.1';

function keys(...segments: string[]) {
  return patientKeys(parseMessage(Buffer.from([msh, ...segments].join('\r') + '\r')));
}

describe('patientKeys', () => {
  it('first PID-3 id ^ namespace, else universal id', () => {
    expect(keys('PID|1||123^^^HOSP^MR~456^^^OTHER')).toEqual({
      primary: '123^HOSP',
      all: ['123^HOSP'],
    });
    expect(keys('PID|1||123^^^&1.2.3&ISO').primary).toBe('123^1.2.3');
    expect(keys('PID|1||123').primary).toBe('123^');
  });

  it('falls back to PID-2 when PID-3 is empty; none gives an empty key', () => {
    expect(keys('PID|1|EXT9^^^OLD||').primary).toBe('EXT9^OLD');
    expect(keys('PID|1||')).toEqual({ primary: '', all: [] });
    expect(keys('EVN|A04')).toEqual({ primary: '', all: [] });
  });

  it('a merge is keyed by the MRG-1 prior id and names both patients', () => {
    expect(keys('PID|1||SURV^^^HOSP^MR', 'MRG|PRIOR^^^HOSP^MR')).toEqual({
      primary: 'PRIOR^HOSP',
      all: ['SURV^HOSP', 'PRIOR^HOSP'],
    });
    // An MRG without an id changes nothing.
    expect(keys('PID|1||SURV^^^HOSP^MR', 'MRG|').primary).toBe('SURV^HOSP');
  });

  it('every PID of a multi-patient message (A17, A24, A37), without repeats', () => {
    expect(keys('PID|1||A^^^H', 'PV1|1|I', 'PID|2||B^^^H', 'PV1|1|I', 'PID|3||A^^^H').all).toEqual([
      'A^H',
      'B^H',
    ]);
  });
});
