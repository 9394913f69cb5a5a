import { tagged } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  arrayLiteral,
  byteaFromText,
  converterFor,
  copyField,
  OID,
  sqlValueToText,
  timestampFromText,
  timestamptzFromText,
} from './postgres-values.js'

const scalar = (oid: number) => converterFor({ oid, elementOid: 0, baseOid: 0 })
const array = (elementOid: number) => converterFor({ oid: 1, elementOid, baseOid: 0 })

describe('postgres text -> SqlValue', () => {
  it('converts per OID without losing precision', () => {
    expect(scalar(OID.int8)('-9223372036854775808')).toBe(-9223372036854775808n)
    expect(scalar(OID.int4)('42')).toBe(42)
    expect(scalar(OID.numeric)('1.10')).toEqual(tagged('decimal', '1.10'))
    expect(scalar(OID.bool)('f')).toBe(false)
    expect(scalar(OID.jsonb)('{"a": 1}')).toEqual(tagged('json', '{"a": 1}'))
    expect(scalar(999_999)('anything')).toBe('anything')
  })
  it('normalizes timestamps to the core canonical form and leaves special values alone', () => {
    expect(timestampFromText('2024-02-29 13:45:00.123456')).toBe('2024-02-29T13:45:00.123456')
    expect(timestamptzFromText('2024-02-29 13:45:00+00')).toBe('2024-02-29T13:45:00Z')
    expect(timestamptzFromText('infinity')).toBe('infinity')
    expect(timestampFromText('0044-03-15 12:00:00 BC')).toBe('0044-03-15 12:00:00 BC')
  })
  it('parses bytea in hex and escape formats', () => {
    expect(byteaFromText('\\x00ff')).toEqual(new Uint8Array([0, 255]))
    expect(byteaFromText('a\\\\\\001')).toEqual(new Uint8Array([97, 92, 1]))
  })
  it('parses arrays element-wise, nested and with bounds', () => {
    expect(array(OID.int8)('{1,NULL,-2}')).toEqual([1n, null, -2n])
    expect(array(OID.text)('{"a,b","c\\"d",NULL,"NULL"}')).toEqual(['a,b', 'c"d', null, 'NULL'])
    expect(array(OID.int4)('{{1,2},{3,4}}')).toEqual([
      [1, 2],
      [3, 4],
    ])
    expect(array(OID.int4)('[0:1]={5,6}')).toEqual([5, 6])
  })
})

describe('SqlValue -> postgres text', () => {
  it('writes values PostgreSQL parses back exactly', () => {
    expect(sqlValueToText(-0)).toBe('-0')
    expect(sqlValueToText(Number.NaN)).toBe('NaN')
    expect(sqlValueToText(12345678901234567890n)).toBe('12345678901234567890')
    expect(sqlValueToText(new Uint8Array([1, 171]))).toBe('\\x01ab')
    expect(sqlValueToText(tagged('timestamptz', '2024-01-01T00:00:00Z'))).toBe(
      '2024-01-01T00:00:00Z',
    )
    expect(sqlValueToText(null)).toBeNull()
    expect(sqlValueToText(undefined)).toBeNull()
  })
  it('builds array literals with quoting and NULLs', () => {
    expect(arrayLiteral(['a"b', 'c\\d', null, 'NULL'])).toBe('{"a\\"b","c\\\\d",NULL,"NULL"}')
    expect(
      arrayLiteral([
        [1n, 2n],
        [3n, null],
      ]),
    ).toBe('{{"1","2"},{"3",NULL}}')
    expect(arrayLiteral([])).toBe('{}')
  })
  it('escapes COPY text fields', () => {
    expect(copyField(null)).toBe('\\N')
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e')
    expect(copyField('\\N')).toBe('\\\\N')
    expect(copyField(new Uint8Array([255]))).toBe('\\\\xff')
  })
})
