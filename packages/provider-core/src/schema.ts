import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import { ProviderError, type ValidationIssue } from './errors.js'

/**
 * A secret field: its value is redacted from logs, errors and events, and the server's
 * forms show it as a password. Marked with the standard `writeOnly` annotation plus an
 * explicit `secret` keyword.
 */
export function Secret<T extends TSchema>(schema: T): T {
  return { ...schema, secret: true, writeOnly: true } as T
}

export function isSecretSchema(schema: unknown): boolean {
  return (
    typeof schema === 'object' &&
    schema !== null &&
    (schema as { secret?: unknown }).secret === true
  )
}

// ajv-formats is CommonJS with a default export; under NodeNext the default import is the module.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (ajv: Ajv) => Ajv

function createAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    useDefaults: true,
    coerceTypes: false,
    removeAdditional: false,
    // Ajv's optimising pass over the generated code costs more than it saves here: it
    // halved the compile of the pipeline schema (about 140 to 60 ms, paid at every CLI
    // start) for 7% more generated code; schemas are checked once per message or node, not
    // per row.
    code: { optimize: false },
    // No check of each schema against the JSON Schema meta-schema: compiling the meta-schema
    // cost 32-55 ms of every CLI start, at the first schema compiled. Compiling still
    // refuses a malformed keyword (a `type` that is no JSON type, a non-numeric `minimum`, a
    // `required` that is no array), naming it (schema.test.ts).
    validateSchema: false,
  })
  addFormats(ajv)
  ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' })
  ajv.addKeyword({ keyword: 'destination', schemaType: 'boolean' })
  ajv.addKeyword({ keyword: 'localPath', schemaType: 'boolean' })
  return ajv
}

const sharedAjv = createAjv()
const compiled = new WeakMap<object, ValidateFunction>()

/** The Ajv validator for a schema, compiled once and kept for the schema's lifetime. */
export function compileSchema(schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = sharedAjv.compile(schema)
    // The compiled function is self-contained. Unregister the schema so that two providers
    // may use the same `$id` in one process, and so Ajv's cache does not keep it alive.
    sharedAjv.removeSchema(schema)
    compiled.set(schema, validate)
  }
  return validate
}

/** RFC 6901 escaping of one JSON pointer segment. */
function pointerSegment(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * A deep copy of the plain objects and arrays in `value` (other objects are shared), so
 * that applying defaults never modifies the caller's object and works on frozen input.
 */
function copyPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyPlain)
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return value
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = copyPlain(item)
    return out
  }
  return value
}

function ruleText(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required':
      return `is required`
    case 'additionalProperties':
      return `unknown property ${JSON.stringify(params.additionalProperty)}`
    case 'type':
      return `must be ${params.type}`
    case 'enum':
      return `must be one of ${JSON.stringify(params.allowedValues)}`
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`
    default:
      return error.message ?? `fails ${error.keyword}`
  }
}

/** Ajv errors as issues with a JSON pointer to the failing field, under `prefix`. */
export function toIssues(
  errors: readonly ErrorObject[] | null | undefined,
  prefix = '',
): ValidationIssue[] {
  if (!errors) return []
  const issues: ValidationIssue[] = []
  const seen = new Set<string>()
  for (const error of errors) {
    let path = error.instancePath
    if (error.keyword === 'required') {
      path = `${path}/${pointerSegment(String((error.params as { missingProperty: string }).missingProperty))}`
    } else if (error.keyword === 'additionalProperties') {
      // Point at the unknown field itself, like `required` does.
      path = `${path}/${pointerSegment(String((error.params as { additionalProperty: string }).additionalProperty))}`
    }
    const fullPath = `${prefix}${path}` || '/'
    const issue = { path: fullPath, rule: error.keyword, message: ruleText(error) }
    const key = `${issue.path}|${issue.rule}|${issue.message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push(issue)
  }
  return issues
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => `${issue.path} ${issue.message} (${issue.rule})`).join('; ')
}

/**
 * Validate `value` against `schema`, applying schema defaults. Returns the value typed;
 * throws a `config` ProviderError that names every failing field and rule. Values are
 * never quoted in the message, so a secret cannot leak through it.
 */
export function validateValue<T extends TSchema>(
  schema: T,
  value: unknown,
  options: { what: string; pathPrefix?: string; providerId?: string; operation?: string } = {
    what: 'value',
  },
): Static<T> {
  const validate = compileSchema(schema)
  const copy = copyPlain(value)
  if (validate(copy)) return copy as Static<T>
  const issues = toIssues(validate.errors, options.pathPrefix ?? '')
  throw new ProviderError({
    kind: 'config',
    message: `invalid ${options.what}: ${formatIssues(issues)}`,
    providerId: options.providerId,
    operation: options.operation,
    issues,
  })
}

export function checkValue(schema: TSchema, value: unknown, pathPrefix = ''): ValidationIssue[] {
  const validate = compileSchema(schema)
  return validate(copyPlain(value)) ? [] : toIssues(validate.errors, pathPrefix)
}

/** An empty object schema, for providers whose stream or context has no settings. */
export const EmptyObject = Type.Object({}, { additionalProperties: false })
