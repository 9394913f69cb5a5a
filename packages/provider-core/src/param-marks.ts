import { createHash } from 'node:crypto'
import type { TSchema } from '@sinclair/typebox'
import { collectMarked } from './redact.js'

/**
 * A destination parameter: one that decides where credentials are sent (host, port, URL,
 * endpoint, region, database, bucket, TLS verification...). Sealed credentials and stored
 * connections are bound to a digest of these values, so changing one of them (sending the
 * secret somewhere else) makes the credentials unusable. Mark every such param: a provider
 * that marks none has all of its params bound.
 */
export function Destination<T extends TSchema>(schema: T): T {
  return { ...schema, destination: true } as T
}

export function isDestinationSchema(schema: unknown): boolean {
  return (
    typeof schema === 'object' &&
    schema !== null &&
    (schema as { destination?: unknown }).destination === true
  )
}

/**
 * A local file-system path the provider opens (fs's root): a runtime serving requests
 * from the bus confines these to its allowlist.
 */
export function LocalPath<T extends TSchema>(schema: T): T {
  return { ...schema, localPath: true } as T
}

export function isLocalPathSchema(schema: unknown): boolean {
  return (
    typeof schema === 'object' &&
    schema !== null &&
    (schema as { localPath?: unknown }).localPath === true
  )
}

function hasMark(
  schema: unknown,
  mark: (node: unknown) => boolean,
  seen = new Set<unknown>(),
): boolean {
  if (schema === null || typeof schema !== 'object' || seen.has(schema)) return false
  seen.add(schema)
  if (mark(schema)) return true
  for (const child of Object.values(schema as Record<string, unknown>)) {
    if (Array.isArray(child)) {
      if (child.some((c) => hasMark(c, mark, seen))) return true
    } else if (hasMark(child, mark, seen)) return true
  }
  return false
}

/** Whether a params schema marks any destination param. */
export function declaresDestinations(paramsSchema: TSchema): boolean {
  return hasMark(paramsSchema, isDestinationSchema)
}

/** JSON with object keys sorted at every level: the canonical form digests are taken over. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value)
    return text === undefined ? 'null' : text
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
  return `{${keys
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    .join(',')}}`
}

/**
 * The destination params of `params`, by JSON pointer (`{"/host": "db1", "/port": 5432}`).
 * A schema that marks no destination param binds every param: `{"/": params}`.
 */
export function destinationParams(paramsSchema: TSchema, params: unknown): Record<string, unknown> {
  if (!declaresDestinations(paramsSchema)) return { '/': params ?? {} }
  return Object.fromEntries(collectMarked(paramsSchema, params, isDestinationSchema))
}

/** Hex SHA-256 of the canonical JSON of `destinationParams`: what credentials are bound to. */
export function destinationDigest(paramsSchema: TSchema, params: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(destinationParams(paramsSchema, params)))
    .digest('hex')
}

/** The local paths in `params` (values of `LocalPath` params), by JSON pointer. */
export function localPathParams(paramsSchema: TSchema, params: unknown): Map<string, unknown> {
  return collectMarked(paramsSchema, params, isLocalPathSchema)
}
