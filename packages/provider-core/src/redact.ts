import type { TSchema } from '@sinclair/typebox'
import { ProviderError } from './errors.js'
import { isSecretSchema } from './schema.js'

export const REDACTED = '[REDACTED]'

type SchemaNode = Record<string, any>

function subSchemas(schema: SchemaNode, key: string): SchemaNode[] {
  const found: SchemaNode[] = []
  if (schema.properties && typeof schema.properties[key] === 'object')
    found.push(schema.properties[key])
  if (schema.patternProperties) {
    for (const [pattern, sub] of Object.entries<SchemaNode>(schema.patternProperties)) {
      if (new RegExp(pattern).test(key)) found.push(sub)
    }
  }
  if (typeof schema.additionalProperties === 'object') found.push(schema.additionalProperties)
  return found
}

function branches(schema: SchemaNode): SchemaNode[] {
  return [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]
}

function walk(
  schema: SchemaNode | undefined,
  value: unknown,
  onSecret: (value: unknown, path: string) => void,
  path: string,
  marked: (schema: SchemaNode) => boolean = isSecretSchema,
): void {
  if (!schema || value === undefined || value === null) return
  if (marked(schema)) {
    onSecret(value, path)
    return
  }
  for (const branch of branches(schema)) walk(branch, value, onSecret, path, marked)
  if (Array.isArray(value)) {
    // A tuple lists one schema per position (`items` as an array, or `prefixItems`).
    const positional: SchemaNode[] | undefined = Array.isArray(schema.prefixItems)
      ? schema.prefixItems
      : Array.isArray(schema.items)
        ? schema.items
        : undefined
    const rest = positional
      ? Array.isArray(schema.items)
        ? schema.additionalItems
        : schema.items
      : schema.items
    value.forEach((v, i) => {
      const itemSchema = positional && i < positional.length ? positional[i] : rest
      if (itemSchema && typeof itemSchema === 'object')
        walk(itemSchema, v, onSecret, `${path}/${i}`, marked)
    })
    return
  }
  if (typeof value === 'object') {
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      for (const sub of subSchemas(schema, key))
        walk(sub, child, onSecret, `${path}/${key}`, marked)
    }
  }
}

function addSecretString(out: Set<string>, text: string): void {
  if (text.length < 3) {
    // Redacting a 1-2 character secret would shred every message; such a secret is still
    // removed from objects by path, just not searched for in free text.
    return
  }
  out.add(text)
  try {
    const encoded = encodeURIComponent(text)
    if (encoded !== text) out.add(encoded)
  } catch {}
  // A secret connection URL also leaks through its password alone.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text)
      if (url.password) {
        out.add(url.password)
        try {
          out.add(decodeURIComponent(url.password))
        } catch {}
      }
    } catch {}
  }
  // JSON-shaped secrets (a service-account key): every long string inside is secret too.
  if (text.startsWith('{')) {
    try {
      collectStrings(JSON.parse(text), out)
    } catch {}
  }
}

function collectStrings(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') {
    if (value.length >= 8) addSecretString(out, value)
  } else if (Array.isArray(value)) {
    for (const v of value) collectStrings(v, out)
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) collectStrings(v, out)
  }
}

/**
 * The values in `value` whose schema node satisfies `marked`, by JSON pointer (a value
 * reached through several union branches is listed once).
 */
export function collectMarked(
  schema: TSchema,
  value: unknown,
  marked: (schema: Record<string, any>) => boolean,
): Map<string, unknown> {
  const out = new Map<string, unknown>()
  walk(schema as SchemaNode, value, (found, path) => out.set(path || '/', found), '', marked)
  return out
}

/** Every secret string in `value`, found through the `secret` marks of its schema. */
export function collectSecrets(schema: TSchema, value: unknown): string[] {
  const out = new Set<string>()
  walk(
    schema as SchemaNode,
    value,
    (secret) => {
      if (typeof secret === 'string') addSecretString(out, secret)
      else collectStrings(secret, out)
    },
    '',
  )
  // Longest first, so a secret that contains another is replaced whole.
  return [...out].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)
}

/** A deep copy of `value` with every secret field replaced by `[REDACTED]`. */
export function redactObject<T>(schema: TSchema, value: T): T {
  const paths: string[] = []
  walk(schema as SchemaNode, value, (_secret, path) => paths.push(path), '')
  if (paths.length === 0) return value
  const copy = structuredClone(value) as any
  for (const path of paths) {
    const parts = path.split('/').slice(1)
    let target = copy
    for (const part of parts.slice(0, -1)) target = target?.[part]
    const last = parts[parts.length - 1]
    if (target && last !== undefined) target[last] = REDACTED
  }
  return copy
}

/** Removes known secret values from text, errors and objects. */
export class Redactor {
  readonly #secrets: readonly string[]

  constructor(secrets: Iterable<string>) {
    this.#secrets = [...new Set(secrets)]
      .filter((s) => s.length >= 3)
      .sort((a, b) => b.length - a.length)
  }

  static fromSchema(schema: TSchema, value: unknown): Redactor {
    return new Redactor(collectSecrets(schema, value))
  }

  static merge(...redactors: Redactor[]): Redactor {
    return new Redactor(redactors.flatMap((r) => r.#secrets))
  }

  get isEmpty(): boolean {
    return this.#secrets.length === 0
  }

  text(text: string): string {
    let out = text
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED)
    }
    return out
  }

  /** A deep copy of a JSON-like value with every secret occurrence in its strings replaced. */
  value<T>(value: T): T {
    if (this.#secrets.length === 0) return value
    const seen = new WeakMap<object, unknown>()
    const visit = (v: unknown): unknown => {
      if (typeof v === 'string') return this.text(v)
      if (v === null || typeof v !== 'object') return v
      if (v instanceof Uint8Array || v instanceof Date) return v
      if (seen.has(v)) return seen.get(v)
      if (Array.isArray(v)) {
        const out: unknown[] = []
        seen.set(v, out)
        for (const item of v) out.push(visit(item))
        return out
      }
      if (v instanceof Error) return this.error(v)
      const out: Record<string, unknown> = {}
      seen.set(v, out)
      for (const [key, item] of Object.entries(v)) out[key] = visit(item)
      return out
    }
    return visit(value) as T
  }

  /**
   * A copy of the error whose message, stack, cursor and every cause in its chain are
   * redacted. A driver's error object (with a config or a query attached) is replaced by
   * a plain Error that keeps only its name, message and code.
   */
  error<E>(error: E): E {
    return this.#error(error, new Map()) as E
  }

  #error(error: unknown, seen: Map<object, unknown>): unknown {
    if (!(error instanceof Error)) {
      if (typeof error === 'string') return this.text(error)
      // A thrown or attached plain object (a driver's config, a response body) is redacted too.
      return this.#secrets.length === 0 ? error : this.value(error)
    }
    if (this.#secrets.length === 0) return error
    if (seen.has(error)) return seen.get(error)
    const cause = (error as { cause?: unknown }).cause
    let copy: Error
    if (ProviderError.isInstance(error)) {
      copy = new ProviderError({
        kind: error.kind,
        message: this.text(error.message),
        providerId: error.providerId,
        operation: error.operation,
        stream: error.stream === undefined ? undefined : this.text(error.stream),
        cursor: this.value(error.cursor),
        retryAfterMs: error.retryAfterMs,
        code: error.code,
        issues: error.issues?.map((i) => ({ ...i, message: this.text(i.message) })),
      })
    } else {
      copy = new Error(this.text(error.message))
      copy.name = error.name
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string' || typeof code === 'number') (copy as any).code = code
    }
    copy.stack = error.stack === undefined ? undefined : this.text(error.stack)
    // Registered before the cause is visited, so a cyclic chain ends.
    seen.set(error, copy)
    if (cause !== undefined) {
      Object.defineProperty(copy, 'cause', {
        value: this.#error(cause, seen),
        writable: true,
        configurable: true,
        enumerable: false,
      })
    }
    return copy
  }
}
