import { type Provider, ProviderError } from '@nvisy/provider-core'

/** `accessKeyId` -> `ACCESS_KEY_ID`, `serviceAccountJson` -> `SERVICE_ACCOUNT_JSON`. */
export function envNameOf(field: string): string {
  return field
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase()
}

/** One field of a credentials schema that a variable can set. */
export interface CredentialVariable {
  /** JSON pointer below the credentials object: `/password`, `/tls/ca`. */
  pointer: string
  /** Its path as keys. */
  keys: string[]
  /** `<PREFIX>_PASSWORD`, `<PREFIX>_TLS__CA`. */
  variable: string
  /** The JSON Schema types the field may have (empty when the schema does not say). */
  types: string[]
  /** True for an object with its own properties: its fields have variables of their own. */
  object: boolean
}

type Schema = Record<string, unknown>

function isSchema(value: unknown): value is Schema {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function typesOf(schema: Schema): string[] {
  const type = schema.type
  if (typeof type === 'string') return [type]
  if (Array.isArray(type)) return type.filter((t): t is string => typeof t === 'string')
  if ('const' in schema) return [schema.const === null ? 'null' : typeof schema.const]
  if (Array.isArray(schema.enum))
    return [...new Set(schema.enum.map((v) => (v === null ? 'null' : typeof v)))]
  return []
}

/** A local `$ref` (`#/definitions/x`, `#/$defs/x`) resolved against the root schema. */
function deref(schema: Schema, root: Schema, seen: Set<Schema>): Schema | undefined {
  let current = schema
  while (typeof current.$ref === 'string') {
    if (seen.has(current)) return undefined
    seen.add(current)
    const ref = current.$ref
    if (!ref.startsWith('#')) return undefined
    let target: unknown = root
    for (const raw of ref.slice(1).split('/').filter(Boolean)) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
      target = isSchema(target) ? target[key] : undefined
    }
    if (!isSchema(target)) return undefined
    current = target
  }
  return current
}

/** The schemas a value must (or may) match besides `schema` itself: combinators and conditionals. */
function branches(schema: Schema): Schema[] {
  const out: Schema[] = []
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = schema[key]
    if (Array.isArray(list)) out.push(...list.filter(isSchema))
  }
  for (const key of ['then', 'else']) if (isSchema(schema[key])) out.push(schema[key] as Schema)
  for (const key of ['dependentSchemas', 'dependencies']) {
    const map = schema[key]
    if (isSchema(map)) out.push(...Object.values(map).filter(isSchema))
  }
  return out
}

/**
 * Every field of a credentials JSON Schema that a variable can set: the properties of the
 * schema and of every `anyOf` / `oneOf` / `allOf` branch (and `then`, `else`, dependent
 * schemas), with local `$ref`s followed, and the fields of nested objects (`tls.ca` from
 * `<PREFIX>_TLS__CA`: nested keys are joined with a double underscore).
 */
export function credentialVariables(schema: unknown, prefix: string): CredentialVariable[] {
  const base = prefix === '' || prefix.endsWith('_') ? prefix : `${prefix}_`
  const root = isSchema(schema) ? schema : {}
  const found = new Map<string, CredentialVariable>()
  const walk = (node: Schema, keys: string[], seen: Set<Schema>) => {
    const resolved = deref(node, root, new Set())
    if (!resolved || seen.has(resolved)) return
    const inner = new Set(seen).add(resolved)
    const properties = resolved.properties
    if (isSchema(properties)) {
      for (const [key, value] of Object.entries(properties)) {
        if (!isSchema(value)) continue
        const field = deref(value, root, new Set())
        if (!field) continue
        const path = [...keys, key]
        const pointer = `/${path.map((k) => k.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`
        const variable = `${base}${path.map(envNameOf).join('__')}`
        const nested = fieldHasProperties(field, root)
        const existing = found.get(pointer)
        if (existing) {
          existing.types = [...new Set([...existing.types, ...typesOf(field)])]
          existing.object ||= nested
        } else {
          const clash = [...found.values()].find((f) => f.variable === variable)
          if (clash) {
            throw new ProviderError({
              kind: 'config',
              message: `credentials fields ${clash.pointer} and ${pointer} both map to ${variable}: use a credentials file instead`,
            })
          }
          found.set(pointer, {
            pointer,
            keys: path,
            variable,
            types: typesOf(field),
            object: nested,
          })
        }
        if (nested) walk(field, path, inner)
        else for (const branch of branches(field)) walk(branch, path, inner)
      }
    }
    for (const branch of branches(resolved)) walk(branch, keys, inner)
  }
  walk(root, [], new Set())
  return [...found.values()]
}

/** True when the field is an object schema with properties (in itself or a branch). */
function fieldHasProperties(field: Schema, root: Schema, depth = 0): boolean {
  if (depth > 8) return false
  if (isSchema(field.properties) && Object.keys(field.properties).length > 0) return true
  return branches(field).some((branch) => {
    const resolved = deref(branch, root, new Set())
    return resolved !== undefined && fieldHasProperties(resolved, root, depth + 1)
  })
}

function setAt(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let current = target
  for (const key of keys.slice(0, -1)) {
    const next = current[key]
    if (!isSchema(next)) current[key] = {}
    current = current[key] as Record<string, unknown>
  }
  current[keys.at(-1)!] = value
}

function jsonError(pointer: string, variable: string, types: string[]): ProviderError {
  const expected = types.join(' or ') || 'JSON'
  return new ProviderError({
    kind: 'config',
    message: `/credentials${pointer}: ${variable} must hold JSON (${expected})`,
    issues: [
      {
        path: `/credentials${pointer}`,
        rule: 'json',
        message: `${variable} must hold JSON (${expected})`,
      },
    ],
  })
}

/**
 * Credentials from environment variables, for `--credentials-env PREFIX`: every field of the
 * provider's credentials schema (see `credentialVariables`) from `<PREFIX>_<FIELD>`
 * (`password` from `PG_PASSWORD`, `accessKeyId` from `S3_ACCESS_KEY_ID`, `tls.ca` from
 * `PG_TLS__CA`). A field the schema types only as something other than a string (a number,
 * a boolean, an array, an object) is parsed as JSON; an object with properties may also be
 * given whole, as JSON in its own variable, when none of its fields' variables is set.
 * Unset variables are left out, so the schema's own check (which `anyOf` branch, what is
 * required) decides, and its issues name the variables (see `variables`). No message
 * contains a value.
 */
export function credentialsFromEnv(
  provider: Provider,
  prefix: string,
  env: NodeJS.ProcessEnv,
): {
  credentials: Record<string, unknown>
  /** Each field's variable, by JSON pointer below the credentials (`/password`). */
  variables: Record<string, string>
  /** The variables that were set and read. */
  read: string[]
} {
  const fields = credentialVariables(provider.definition.credentials, prefix)
  const credentials: Record<string, unknown> = {}
  const variables: Record<string, string> = {}
  const read: string[] = []
  const setBelow = (field: CredentialVariable) =>
    fields.some(
      (other) => other.pointer.startsWith(`${field.pointer}/`) && env[other.variable] !== undefined,
    )
  for (const field of fields) {
    variables[field.pointer] = field.variable
    const value = env[field.variable]
    if (value === undefined) continue
    if (field.object && setBelow(field)) {
      const inner = fields.find(
        (other) =>
          other.pointer.startsWith(`${field.pointer}/`) && env[other.variable] !== undefined,
      )!
      throw new ProviderError({
        kind: 'config',
        message: `/credentials${field.pointer}: set either ${field.variable} (the whole object as JSON) or its fields' variables (${inner.variable}), not both`,
      })
    }
    read.push(field.variable)
    const stringAllowed =
      !field.object && (field.types.length === 0 || field.types.includes('string'))
    if (stringAllowed) {
      setAt(credentials, field.keys, value)
      continue
    }
    try {
      setAt(credentials, field.keys, JSON.parse(value))
    } catch {
      throw jsonError(field.pointer, field.variable, field.object ? ['object'] : field.types)
    }
  }
  return { credentials, variables, read }
}

/**
 * For a credentials schema made of alternatives (`anyOf` / `oneOf` at the top), each
 * alternative with its variables, required ones marked, e.g. `User and password (MYSQL_USER
 * required, MYSQL_PASSWORD) or Connection URL (MYSQL_URL required)`; undefined otherwise.
 */
export function describeAlternatives(schema: unknown, prefix: string): string | undefined {
  if (!isSchema(schema)) return undefined
  const list = Array.isArray(schema.anyOf) ? schema.anyOf : schema.oneOf
  if (!Array.isArray(list)) return undefined
  const all = credentialVariables(schema, prefix)
  const parts = list.filter(isSchema).map((branch, i) => {
    const resolved = deref(branch, schema, new Set()) ?? branch
    const properties = isSchema(resolved.properties) ? Object.keys(resolved.properties) : []
    const required = Array.isArray(resolved.required) ? resolved.required : []
    const names = properties.map((key) => {
      const variable = all.find((v) => v.keys.length === 1 && v.keys[0] === key)?.variable
      return `${variable ?? key}${required.includes(key) ? ' required' : ''}`
    })
    const title = typeof resolved.title === 'string' ? resolved.title : `option ${i + 1}`
    return `${title} (${names.length > 0 ? names.join(', ') : 'no variables'})`
  })
  return parts.length > 1 ? parts.join(' or ') : undefined
}
