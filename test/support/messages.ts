/** Synthetic HL7 messages for tests (fictitious people). */
let seq = 0;

export interface AdtOptions {
  controlId?: string;
  trigger?: string;
  version?: string;
  mrn?: string;
  authority?: string;
  family?: string;
  given?: string;
  type?: string;
  facility?: string;
  ackTypes?: [string, string];
  segments?: string[];
}

export function adt(o: AdtOptions = {}): string {
  const id = o.controlId ?? `MSG${Date.now()}${++seq}`;
  const trigger = o.trigger ?? 'A01';
  const type = o.type ?? 'ADT';
  const version = o.version ?? '2.5.1';
  const msh15 = o.ackTypes ? `|||${o.ackTypes[0]}|${o.ackTypes[1]}` : '';
  const segs = o.segments ?? [
    `EVN|${trigger}|20240101120000`,
    `PID|1||${o.mrn ?? '12345'}^^^${o.authority ?? 'HOSP'}^MR||${o.family ?? 'DOE'}^${o.given ?? 'JANE'}||19800101|F`,
    'PV1|1|I|W^101^1',
  ];
  return (
    [
      `MSH|^~\\&|SENDER|${o.facility ?? 'FAC'}|ENGINE|DEST|20240101120000||${type}^${trigger}|${id}|P|${version}${msh15}`,
      ...segs,
    ].join('\r') + '\r'
  );
}

export function oru(o: { controlId?: string; withObx?: boolean } = {}): string {
  const id = o.controlId ?? `ORU${Date.now()}${++seq}`;
  return (
    [
      `MSH|^~\\&|LAB|FAC|ENGINE|DEST|20240101120000||ORU^R01^ORU_R01|${id}|P|2.5.1`,
      'PID|1||555^^^HOSP^MR||ROE^RICHARD||19700101|M',
      'OBR|1||ACC1|2345-7^GLUCOSE^LN|||20240101110000',
      ...(o.withObx === false ? [] : ['OBX|1|NM|2345-7^GLUCOSE^LN||105|mg/dL|70-99|H|||F']),
    ].join('\r') + '\r'
  );
}
