import type { DestinationConfig } from '@engine/config';
import { renderFhir } from './transforms/fhir';
import { renderHl7 } from './transforms/hl7';
import { renderJson } from './transforms/json';
import type { Rendered, RenderInput, RenderOptions } from './types';

/**
 * Renders one delivery in its destination's format. Null: the format has nothing for it (an
 * MPI event with no HL7 v2 or FHIR counterpart); the delivery is then marked `skipped`.
 */
export function render(
  format: DestinationConfig['format'],
  input: RenderInput,
  opts: RenderOptions,
): Rendered | null {
  switch (format) {
    case 'hl7':
      return renderHl7(input, opts);
    case 'json':
      return renderJson(input, opts);
    case 'fhir':
      return renderFhir(input, opts);
  }
}
