import { tagged } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { sqliteProvider } from './sqlite-provider.js'
import { SqliteContextSchema } from './sqlite-schemas.js'
import { fromCursorValue, fromSqlite, toCursorValue, toSqlite } from './sqlite-values.js'

describe('fromSqlite', () => {
  it('turns safe integers into numbers and keeps the rest as bigint', () => {
    expect(fromSqlite(42n)).toBe(42)
    expect(fromSqlite(9007199254740991n)).toBe(9007199254740991)
    expect(fromSqlite(-9007199254740991n)).toBe(-9007199254740991)
    expect(fromSqlite(9007199254740992n)).toBe(9007199254740992n)
    expect(fromSqlite(-9007199254740992n)).toBe(-9007199254740992n)
  })

  it('returns blobs as plain Uint8Array views of the same bytes', () => {
    const buffer = Buffer.from([1, 2, 3])
    const bytes = fromSqlite(buffer) as Uint8Array
    expect(Buffer.isBuffer(bytes)).toBe(false)
    expect(bytes).toEqual(new Uint8Array([1, 2, 3]))
    expect(bytes.buffer).toBe(buffer.buffer)
  })

  it('keeps reals, text and null', () => {
    expect(fromSqlite(1.5)).toBe(1.5)
    expect(fromSqlite('x')).toBe('x')
    expect(fromSqlite(null)).toBeNull()
  })
})

describe('toSqlite', () => {
  it('binds whole numbers and booleans as integers, other numbers as reals', () => {
    expect(toSqlite(3, 'f')).toBe(3n)
    expect(toSqlite(true, 'f')).toBe(1n)
    expect(toSqlite(false, 'f')).toBe(0n)
    expect(toSqlite(2.5, 'f')).toBe(2.5)
    expect(Object.is(toSqlite(-0, 'f'), -0)).toBe(true)
    expect(toSqlite(2 ** 60, 'f')).toBe(2 ** 60)
  })

  it('binds tagged values as their text and arrays as JSON', () => {
    expect(toSqlite(tagged('decimal', '1.10'), 'f')).toBe('1.10')
    expect(toSqlite([1n, 'a', null], 'f')).toBe('[1,"a",null]')
  })

  it('refuses integers beyond 64 bits as data', () => {
    expect(() => toSqlite(2n ** 63n, 'big')).toThrow(
      expect.objectContaining({ kind: 'data', message: expect.stringContaining('"big"') }),
    )
    expect(toSqlite(-(2n ** 63n), 'f')).toBe(-(2n ** 63n))
  })
})

describe('cursor values', () => {
  const roundTrip = (raw: bigint | number | string | Uint8Array) => {
    const json = JSON.parse(JSON.stringify(toCursorValue(raw, 'c')))
    sqliteProvider.validateContext({ cursor: [json] })
    return fromCursorValue(json)
  }

  it('are JSON-safe, valid against the context schema, and bind back exactly', () => {
    expect(roundTrip(5n)).toBe(5)
    expect(roundTrip(9223372036854775807n)).toBe(9223372036854775807n)
    expect(roundTrip(-9223372036854775808n)).toBe(-9223372036854775808n)
    expect(roundTrip(0.1)).toBe(0.1)
    expect(roundTrip(Infinity)).toBe(Infinity)
    expect(roundTrip(-Infinity)).toBe(-Infinity)
    expect(roundTrip('text')).toBe('text')
    expect(roundTrip(Buffer.from([0, 255]))).toEqual(Buffer.from([0, 255]))
    expect(SqliteContextSchema.properties.cursor.minItems).toBe(1)
  })

  it('refuse NULL with a config error naming the column', () => {
    expect(() => toCursorValue(null, 'updated_at')).toThrow(
      expect.objectContaining({ kind: 'config', message: expect.stringContaining('updated_at') }),
    )
  })
})
