/**
 * Where a mapping comes from: the `crmMapping` / `inventoryMapping` setting (flag, SYNCCTL_* variable
 * or profile key) holds a JSON file's path or the JSON itself; fields it leaves out fall back to the
 * per-field settings (dot paths).
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { ConfigError } from '../errors.js';
import { MAPPING_FIELDS, type MappingField, type MappingSpec } from './mapping.js';

let ajv: Ajv | undefined;

function validatorFor(fields: readonly MappingField[]) {
  ajv ??= new Ajv({ allErrors: false, strict: true });
  return ajv.compile<MappingSpec>({
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(fields.map((f) => [f, { type: ['string', 'null'] }])),
  });
}

type Entity = 'customer' | 'product';
const validators = new Map<Entity, ReturnType<typeof validatorFor>>();

/** Compiled on first use: most runs configure no mapping. */
function validatorOf(entity: Entity) {
  let validate = validators.get(entity);
  if (!validate) {
    validate = validatorFor(
      entity === 'customer' ? MAPPING_FIELDS : MAPPING_FIELDS.filter((f) => f !== 'productIds'),
    );
    validators.set(entity, validate);
  }
  return validate;
}

/**
 * Reads a mapping setting: "" = none, text starting with "{" = the JSON itself, anything else = a
 * JSON file. `setting` is the flag that set it, for messages.
 */
export function loadMappingSpec(
  value: string | MappingSpec | undefined,
  entity: Entity,
  setting: string,
): MappingSpec {
  if (value === undefined || value === '') return {};
  let parsed: unknown = value;
  if (typeof value === 'string') {
    const inline = value.trim().startsWith('{');
    let text = value;
    if (!inline) {
      try {
        text = readFileSync(value, 'utf8');
      } catch (err) {
        throw new ConfigError(
          `${setting} ${value}: cannot read the mapping file (${(err as Error).message})`,
          {
            hint: `give ${setting} the path of a JSON file (or the JSON itself)`,
          },
        );
      }
    }
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(
        `${setting}${inline ? '' : ` ${value}`}: the mapping is not valid JSON (${(err as Error).message})`,
      );
    }
  }
  const validate = validatorOf(entity);
  if (!validate(parsed)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? `field ${e.instancePath.slice(1)}` : 'the mapping';
    const allowed = Object.keys((validate.schema as { properties: Record<string, unknown> }).properties).join(
      ', ',
    );
    const what =
      e?.keyword === 'additionalProperties'
        ? `has an unknown field "${String(e.params.additionalProperty)}" (known: ${allowed})`
        : `${e?.message ?? 'is invalid'} (an object of JSONata expressions: ${allowed})`;
    throw new ConfigError(`${setting}: ${where} ${what}`);
  }
  return parsed;
}
