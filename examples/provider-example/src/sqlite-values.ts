import { ProviderError, type SqlValue, sqlValueToJson } from '@nvisy/provider-core'
import type { CursorValue } from './sqlite-schemas.js'

/** What better-sqlite3 returns with safeIntegers(true): bigint, number, string, Buffer or null. */
export type RawValue = bigint | number | string | Uint8Array | null

/** What better-sqlite3 binds. */
export type BindValue = bigint | number | string | Uint8Array | null

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)

/**
 * A value SQLite returned, by its storage class: INTEGER -> number, or bigint outside the
 * safe range; REAL -> number; TEXT -> string; BLOB -> Uint8Array; NULL -> null.
 */
export function fromSqlite(value: unknown): SqlValue {
  if (value === null || value === undefined) return null
  if (typeof value === 'bigint')
    return value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : value
  if (typeof value === 'number' || typeof value === 'string') return value
  if (value instanceof Uint8Array)
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw new ProviderError({
    kind: 'internal',
    message: `sqlite returned an unexpected ${typeof value} value`,
  })
}

function dataError(message: string): ProviderError {
  return new ProviderError({ kind: 'data', message })
}

/**
 * A value to bind: integers (whole safe numbers and bigints) bind as INTEGER, other numbers as
 * REAL, booleans as 1/0, strings as TEXT, bytes as BLOB; tagged values (decimal, timestamp,
 * json...) as their canonical text; arrays as JSON text.
 */
export function toSqlite(value: SqlValue, field: string): BindValue {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case 'boolean':
      return value ? 1n : 0n
    case 'number':
      return Number.isSafeInteger(value) && !Object.is(value, -0) ? BigInt(value) : value
    case 'bigint':
      if (value > 9223372036854775807n || value < -9223372036854775808n)
        throw dataError(`field ${JSON.stringify(field)}: ${value} does not fit a 64-bit INTEGER`)
      return value
    case 'string':
      return value
  }
  if (value instanceof Uint8Array) return value
  if (Array.isArray(value)) return JSON.stringify(sqlValueToJson(value as SqlValue))
  if (typeof value === 'object' && typeof (value as { value?: unknown }).value === 'string')
    return (value as { value: string }).value
  throw dataError(`field ${JSON.stringify(field)}: a ${typeof value} cannot be stored in SQLite`)
}

/** A cursor value for the resume context: JSON-safe, and binding back to the same storage class. */
export function toCursorValue(value: RawValue, column: string): CursorValue {
  if (value === null || value === undefined) {
    throw new ProviderError({
      kind: 'config',
      message: `cursor column ${JSON.stringify(column)} is NULL in a row: cursor columns must be NOT NULL (rows with NULL cannot be resumed after)`,
    })
  }
  if (typeof value === 'bigint')
    return value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : { int: value.toString() }
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value
    return { real: value > 0 ? 'Infinity' : '-Infinity' }
  }
  if (typeof value === 'string') return value
  return { blob: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
}

export function fromCursorValue(value: CursorValue): BindValue {
  if (typeof value === 'number' || typeof value === 'string') return value
  if ('int' in value) return BigInt(value.int)
  if ('real' in value) return value.real === 'Infinity' ? Infinity : -Infinity
  return Buffer.from(value.blob, 'base64')
}
