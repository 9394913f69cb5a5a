import { tagged } from '@nvisy/provider-core'
import neo4j from 'neo4j-driver'
import { describe, expect, it } from 'vitest'
import { quoteName } from './neo4j-cypher.js'
import { classifyNeo4jError } from './neo4j-errors.js'
import { fromNeo4j, keyText, keyValue, toNeo4j } from './neo4j-values.js'

describe('neo4j values', () => {
  it('maps driver values to exact core values', () => {
    expect(fromNeo4j(neo4j.int('9223372036854775807'))).toBe(9223372036854775807n)
    expect(fromNeo4j(new neo4j.types.Date(-44, 3, 15))).toEqual(tagged('date', '-0044-03-15'))
    expect(fromNeo4j(new neo4j.types.DateTime(2024, 1, 1, 0, 30, 0, 5, 3600))).toEqual(
      tagged('timestamptz', '2023-12-31T23:30:00.000000005Z'),
    )
    expect(fromNeo4j(new neo4j.types.Time(1, 2, 3, 4, -16200))).toEqual(
      tagged('time', '01:02:03.000000004-04:30'),
    )
    expect(fromNeo4j(new neo4j.types.Duration(-1, 0, -2, 500_000_000))).toEqual(
      tagged('interval', 'P-1M0DT-1.500000000S'),
    )
    expect(fromNeo4j(new Int8Array([-1, 1]))).toEqual(new Uint8Array([255, 1]))
  })

  it('maps core values back, refusing what Neo4j cannot store', () => {
    expect(toNeo4j(tagged('interval', 'P-1M0DT-1.500000000S'), 'x')).toMatchObject({
      months: -1n,
      days: 0n,
      seconds: -2n,
      nanoseconds: 500_000_000n,
    })
    expect(toNeo4j(tagged('json', '{"a":1}'), 'x')).toBe('{"a":1}')
    expect(toNeo4j(tagged('decimal', '1.10'), 'x')).toBe('1.10')
    expect(() => toNeo4j({ a: 1 } as never, 'p')).toThrow(/map/)
    expect(() => toNeo4j([1n, 'a'], 'p')).toThrow(/one type/)
    expect(() => toNeo4j([null], 'p')).toThrow(/null/)
    expect(() => toNeo4j(1n << 64n, 'p')).toThrow(/64-bit/)
    expect(() => toNeo4j(tagged('date', '2024-13-01'), 'p')).toThrow(/date/)
    expect(() => toNeo4j(tagged('timestamptz', '2024-01-01T00:00:00'), 'p')).toThrow(/offset/)
  })

  it('keys and contexts round-trip through JSON', () => {
    expect(keyValue(keyText(12345678901234567n)!)).toBe(12345678901234567n)
    expect(keyValue(keyText('a')!)).toBe('a')
    expect(keyValue(keyText(1.5)!)).toBe(1.5)
    expect(keyText(true)).toBeUndefined()
  })
})

describe('neo4j names and errors', () => {
  it('quotes valid names and refuses anything else', () => {
    expect(quoteName('Person_1')).toBe('`Person_1`')
    expect(quoteName('Città')).toBe('`Città`')
    for (const bad of ['', 'a b', 'x`y', '1abc', 'a-b', 'n) DETACH DELETE n //'])
      expect(() => quoteName(bad)).toThrow()
  })

  it('classifies driver error codes', () => {
    const kind = (code: string) => classifyNeo4jError(Object.assign(new Error('x'), { code }))?.kind
    expect(kind('Neo.ClientError.Security.Unauthorized')).toBe('auth')
    expect(kind('ServiceUnavailable')).toBe('transient')
    expect(kind('SessionExpired')).toBe('transient')
    expect(kind('Neo.TransientError.Transaction.DeadlockDetected')).toBe('transient')
    expect(kind('Neo.ClientError.Database.DatabaseNotFound')).toBe('not_found')
    expect(kind('Neo.ClientError.Schema.ConstraintValidationFailed')).toBe('data')
    expect(kind('Neo.ClientError.Statement.SyntaxError')).toBeUndefined()
    expect(classifyNeo4jError(new Error('plain'))).toBeUndefined()
  })
})
