/**
 * Every setting of every command and connector, merged into one table: what `config set`
 * validates against, what a profile may hold, and which values are secrets.
 */
import { createRequire } from 'node:module';
import type * as ajvModule from 'ajv';
import type { Ajv as AjvType, ValidateFunction } from 'ajv';
import { describeRule, type SettingDef, type SettingGroup, type SettingValue } from './define.js';
import { ANALYTICS_SETTINGS, CRM_SETTINGS, INVENTORY_SETTINGS } from './sources.js';
import {
  CONSUME_SETTINGS,
  DOCTOR_SETTINGS,
  FETCH_SETTINGS,
  GLOBAL_SETTINGS,
  PUBLISH_SETTINGS,
  REPLAY_DLQ_SETTINGS,
  RUN_SETTINGS,
  SANDBOX_SETTINGS,
  STATUS_SETTINGS,
  TOPIC_SETTINGS,
  TOPICS_ENSURE_SETTINGS,
} from './stages.js';
import { EXPORT_CSV_SETTINGS } from './export-csv.js';
import { PROBE_SETTINGS } from './probe.js';
import { LIMIT_SETTINGS } from './limits.js';
import { KAFKA_SETTINGS } from './kafka.js';

const GROUPS: readonly SettingGroup[] = [
  GLOBAL_SETTINGS,
  TOPIC_SETTINGS,
  TOPICS_ENSURE_SETTINGS,
  DOCTOR_SETTINGS,
  FETCH_SETTINGS,
  PUBLISH_SETTINGS,
  CONSUME_SETTINGS,
  REPLAY_DLQ_SETTINGS,
  CRM_SETTINGS,
  INVENTORY_SETTINGS,
  ANALYTICS_SETTINGS,
  SANDBOX_SETTINGS,
  EXPORT_CSV_SETTINGS,
  RUN_SETTINGS,
  STATUS_SETTINGS,
  PROBE_SETTINGS,
  LIMIT_SETTINGS,
  KAFKA_SETTINGS,
];

/** The parts of a definition a stored value is checked against; commands sharing a key must agree on them. */
function rule(def: SettingDef): string {
  return JSON.stringify([def.type, def.min, def.max, def.choices, def.nonEmpty, def.secret]);
}

function mergeGroups(groups: readonly SettingGroup[]): ReadonlyMap<string, SettingDef> {
  const all = new Map<string, SettingDef>();
  for (const group of groups) {
    for (const [key, def] of Object.entries(group)) {
      const seen = all.get(key);
      if (seen && rule(seen) !== rule(def)) {
        throw new Error(`setting ${key} is defined twice with different rules`);
      }
      if (!seen) all.set(key, def);
    }
  }
  return all;
}

export const ALL_SETTINGS = mergeGroups(GROUPS);

export const SECRET_KEYS: readonly string[] = [...ALL_SETTINGS]
  .filter(([, def]) => def.secret)
  .map(([key]) => key);

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.includes(key);
}

function schemaOf(def: SettingDef): Record<string, unknown> {
  if (def.type === 'boolean') return { type: 'boolean' };
  if (def.type === 'integer') {
    return {
      type: 'integer',
      ...(def.min !== undefined ? { minimum: def.min } : {}),
      ...(def.max !== undefined ? { maximum: def.max } : {}),
    };
  }
  return {
    type: 'string',
    ...(def.choices ? { enum: def.choices } : {}),
    ...(def.nonEmpty ? { minLength: 1 } : {}),
  };
}

/**
 * One schema for a whole profile (types coerced from strings, unknown keys refused), registered
 * once; each setting's part is compiled the first time a value of it is checked. Compiling all of it
 * up front cost every command about half a second of start-up.
 */
let ajvInstance: AjvType | undefined;
// Made on the first value checked: `--help` and commands given no values never load ajv.
function ajv(): AjvType {
  if (ajvInstance) return ajvInstance;
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof ajvModule;
  ajvInstance = new Ajv({ coerceTypes: true, strict: true });
  ajvInstance.addSchema(
    {
      $id: 'syncctl-settings',
      type: 'object',
      properties: Object.fromEntries([...ALL_SETTINGS].map(([key, def]) => [key, schemaOf(def)])),
      additionalProperties: false,
    },
    'syncctl-settings',
  );
  return ajvInstance;
}
const validators = new Map<string, ValidateFunction>();

function validateSettings(key: string, data: Record<string, unknown>): boolean {
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv().compile({
      type: 'object',
      properties: { [key]: { $ref: `syncctl-settings#/properties/${key}` } },
      additionalProperties: false,
    });
    validators.set(key, validate);
  }
  return validate(data);
}

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off)$/i;

export type Checked = { ok: true; value: SettingValue } | { ok: false; problem: string };

/** Checks one value of a setting (a flag, variable or profile value) against its definition. */
export function checkValue(key: string, def: SettingDef, raw: unknown): Checked {
  let value = raw;
  if (def.type === 'boolean' && typeof raw === 'string') {
    if (TRUE.test(raw)) value = true;
    else if (FALSE.test(raw)) value = false;
  }
  // ajv would coerce "" to 0; an empty number is a mistake, not zero.
  if (def.type === 'integer' && typeof raw === 'string' && raw.trim() === '') value = undefined;
  const data: Record<string, unknown> = { [key]: value };
  if (value !== undefined && validateSettings(key, data))
    return { ok: true, value: data[key] as SettingValue };
  const shown = def.secret ? '' : `, got ${JSON.stringify(raw)}`;
  const problem = def.nonEmpty && raw === '' ? 'must not be empty' : `${describeRule(def)}${shown}`;
  return { ok: false, problem };
}

/** The first unknown key or invalid value of a stored profile, if any. */
export function checkProfileValues(
  values: Record<string, unknown>,
): { key: string; problem: string } | undefined {
  for (const [key, raw] of Object.entries(values)) {
    const def = ALL_SETTINGS.get(key);
    if (!def) return { key, problem: 'is not a setting syncctl knows' };
    const checked = checkValue(key, def, raw);
    if (!checked.ok) return { key, problem: checked.problem };
  }
  return undefined;
}
