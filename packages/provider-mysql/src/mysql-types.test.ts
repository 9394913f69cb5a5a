import { type ColumnInfo as PortableColumn, type SqlValue, tagged } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import {
  durationMicros,
  encodeFor,
  enumMembers,
  mysqlTypeFor,
  portableType,
  splitDecimal,
} from './mysql-types.js'
import type { ColumnInfo } from './mysql-values.js'

const column = (dataType: string, columnType = dataType, extra: Partial<ColumnInfo> = {}) =>
  ({
    name: 'c',
    dataType,
    columnType,
    nullable: true,
    primaryKeyPosition: 0,
    json: false,
    ...extra,
  }) as ColumnInfo

describe('portable types from information_schema', () => {
  it('maps every common type', () => {
    expect(portableType(column('bigint', 'bigint(20) unsigned'))).toEqual({
      type: 'integer',
      bits: 64,
      unsigned: true,
    })
    expect(portableType(column('mediumint', 'mediumint(9)'))).toEqual({ type: 'integer', bits: 24 })
    expect(portableType(column('decimal', 'decimal(65,30)'))).toEqual({
      type: 'decimal',
      precision: 65,
      scale: 30,
    })
    expect(portableType(column('float'))).toEqual({ type: 'float', bits: 32 })
    expect(portableType(column('bit', 'bit(64)'))).toEqual({ type: 'bits', length: 64 })
    expect(portableType(column('time', 'time(6)'))).toEqual({ type: 'duration', precision: 6 })
    expect(portableType(column('timestamp', 'timestamp(3)'))).toEqual({
      type: 'timestamp',
      withTimeZone: true,
      precision: 3,
    })
    expect(portableType(column('longtext', 'longtext', { json: true }))).toEqual({ type: 'json' })
    expect(portableType(column('set', "set('a','b')", { nativeType: "set('A','it''s')" }))).toEqual(
      { type: 'set', values: ['A', "it's"] },
    )
    expect(enumMembers("enum('x,y','','\\\\')")).toEqual(['x,y', '', '\\'])
  })
})

describe('portable -> MySQL DDL', () => {
  const col = (type: PortableColumn['type']): PortableColumn => ({
    name: 'c',
    nativeType: 'x',
    type,
    nullable: true,
  })
  it('maps with the documented rules and refuses what does not fit', () => {
    expect(mysqlTypeFor(col({ type: 'integer', bits: 64 }), false)).toBe('BIGINT')
    expect(mysqlTypeFor(col({ type: 'decimal' }), false)).toBe('DECIMAL(65,30)')
    expect(mysqlTypeFor(col({ type: 'decimal', precision: 12, scale: 4 }), false)).toBe(
      'DECIMAL(12,4)',
    )
    expect(() => mysqlTypeFor(col({ type: 'decimal', precision: 70, scale: 2 }), false)).toThrow(
      /column "c".*65 digits/,
    )
    expect(mysqlTypeFor(col({ type: 'bits', length: 64 }), false)).toBe('BIT(64)')
    expect(mysqlTypeFor(col({ type: 'bits', length: 0, varying: true }), false)).toMatch(
      /^LONGTEXT CHARACTER SET ascii/,
    )
    expect(mysqlTypeFor(col({ type: 'bits', length: 8, varying: true }), false)).toMatch(
      /^VARCHAR\(8\) CHARACTER SET ascii/,
    )
    expect(() => mysqlTypeFor(col({ type: 'bits', length: 65 }), false)).toThrow(
      expect.objectContaining({ kind: 'config' }),
    )
    expect(mysqlTypeFor(col({ type: 'timestamp', withTimeZone: true }), false)).toBe('DATETIME(6)')
    expect(mysqlTypeFor(col({ type: 'text' }), true)).toMatch(/^VARCHAR\(768\)/)
    expect(mysqlTypeFor(col({ type: 'text' }), false)).toMatch(/^LONGTEXT/)
    expect(() => mysqlTypeFor(col({ type: 'other' }), false)).toThrow(/column "c"/)
  })
})

describe('encoding for the declared column type', () => {
  it('writes exact literals', () => {
    expect(encodeFor(column('bit', 'bit(4)'), tagged('bits', '0101'))).toBe("b'0101'")
    expect(encodeFor(column('bit', 'bit(64)'), 18446744073709551615n)).toBe('18446744073709551615')
    expect(encodeFor(column('bit', 'bit(1)'), true)).toBe("b'1'")
    expect(encodeFor(column('float'), 0.1)).toBe(String(Math.fround(0.1)))
    expect(encodeFor(column('float'), 1.1754943508222875e-38)).toBe('1.1754943508222875e-38')
    expect(encodeFor(column('double'), 5e-324)).toBe('5e-324')
    // PostgreSQL prints real FLT_MAX as its float32 shortest text, a double just above it.
    expect(encodeFor(column('float'), 3.4028235e38)).toBe('3.4028234663852886e+38')
    expect(encodeFor(column('decimal', 'decimal(65,30)'), tagged('decimal', '-1.500'))).toBe('-1.5')
    expect(encodeFor(column('decimal', 'decimal(10,2)'), 1e-7 * 1e5)).toBe('0.01')
    expect(encodeFor(column('time', 'time(6)'), tagged('interval', '-838:59:59.000000'))).toBe(
      "'-838:59:59.000000'",
    )
    expect(encodeFor(column('time', 'time(6)'), tagged('interval', '1 day 02:00:00.5'))).toBe(
      "'26:00:00.500000'",
    )
    expect(encodeFor(column('time', 'time'), tagged('interval', 'P1DT2H3M4S'))).toBe("'26:03:04'")
    expect(
      encodeFor(
        column('datetime', 'datetime(6)'),
        tagged('timestamptz', '2024-01-01T01:00:00.5+02:00'),
      ),
    ).toBe("'2023-12-31 23:00:00.5'")
    expect(encodeFor(column('set', "set('a','b')"), ['a', 'b'])).toBe("'a,b'")
    expect(encodeFor(column('year'), 2024)).toBe('2024')
    expect(encodeFor(column('int'), null)).toBe('NULL')
  })

  it('refuses what the column cannot represent, naming the value type and rule', () => {
    expect(() => encodeFor(column('bit', 'bit(4)'), tagged('bits', '10101'))).toThrow(
      /a bits value of 5 bits does not fit bit\(4\)/,
    )
    expect(() => encodeFor(column('bit', 'bit(4)'), 16)).toThrow(/out of range/)
    expect(() => encodeFor(column('int', 'int(11)'), 'seven')).toThrow(
      /a string cannot be stored in an integer column/,
    )
    expect(() => encodeFor(column('int', 'int(10) unsigned'), -1)).toThrow(/out of range/)
    expect(() => encodeFor(column('tinyint', 'tinyint(4)'), 1.5)).toThrow(/not an integer/)
    expect(() => encodeFor(column('decimal', 'decimal(5,2)'), tagged('decimal', '1.234'))).toThrow(
      /no rounding/,
    )
    expect(() => encodeFor(column('decimal', 'decimal(5,2)'), tagged('decimal', '1234.5'))).toThrow(
      /4 integer and 1 fraction digits does not fit decimal\(5,2\)/,
    )
    expect(() => encodeFor(column('float'), 1e39)).toThrow(/out of range for FLOAT/)
    expect(() => encodeFor(column('double'), Number.NaN)).toThrow(/NaN/)
    expect(() =>
      encodeFor(column('datetime', 'datetime(3)'), tagged('timestamp', '2024-01-01T00:00:00.1234')),
    ).toThrow(/fractional digits/)
    expect(() => encodeFor(column('time', 'time(6)'), tagged('interval', '839:00:00'))).toThrow(
      /out of range for TIME/,
    )
    expect(() =>
      encodeFor(column('time', 'time(6)'), tagged('interval', '1 mon 00:00:00')),
    ).toThrow(/fixed length/)
    expect(() => encodeFor(column('enum', "enum('a')"), 'b')).toThrow(/not one of the ENUM/)
    expect(() => encodeFor(column('year'), 1800)).toThrow(/YEAR/)
  })

  it('never quotes the refused value: each refusal names the type and the rule only', () => {
    const canary = 'CANARY-5f3a9c1e-types'
    // 2^60 + 1: no double holds it, and its digits are as distinctive as the text canary.
    const digits = 1152921504606846977n
    const refusals: [ColumnInfo, SqlValue][] = [
      [column('decimal', 'decimal(10,2)'), tagged('decimal', canary)],
      [column('decimal', 'decimal(10,2)'), tagged('decimal', `1${digits}`)],
      [column('int', 'int(11)'), tagged('decimal', canary)],
      [column('float'), tagged('decimal', canary)],
      [column('double'), tagged('decimal', canary)],
      [column('double'), digits],
      [column('float'), digits],
      [column('bit', 'bit(4)'), tagged('bits', canary)],
      [column('date'), tagged('timestamp', canary)],
      [column('datetime', 'datetime(6)'), tagged('timestamp', canary)],
      [column('datetime', 'datetime(6)'), tagged('timestamptz', `${canary}Z`)],
      [column('timestamp', 'timestamp(6)'), tagged('timestamptz', `${canary}+02:00`)],
      [column('datetime', 'datetime(6)'), tagged('timestamptz', `2024-01-01T${canary}+02:00`)],
      [column('time', 'time(6)'), tagged('interval', canary)],
      [column('time', 'time(6)'), tagged('time', `10:00:00${canary}+02:00`)],
      [column('year'), canary],
      [column('longtext', 'longtext', { json: true }), tagged('decimal', canary)],
      [column('enum', "enum('a','b')"), canary],
      [column('set', "set('a','b')"), `a,${canary}`],
      [column('set', "set('a','b')"), ['a', canary]],
      [column('set', "set('a','b')"), [`a,${canary}`]],
      [column('varchar', 'varchar(10)'), [canary]],
      [column('varbinary', 'varbinary(10)'), tagged('decimal', canary)],
      [column('point'), canary],
      // A type this package has no encoder for (MariaDB's UUID, INET6) goes through toLiteral.
      [column('uuid'), tagged('decimal', canary)],
      [column('inet6'), [`x,${canary}`]],
      [column('inet6'), Number.NaN],
    ]
    const accepted: string[] = []
    const leaks: string[] = []
    for (const [target, value] of refusals) {
      const label = `${target.columnType} <- ${typeof value === 'bigint' ? 'bigint' : JSON.stringify(value)}`
      try {
        encodeFor(target, value)
        accepted.push(label)
      } catch (error) {
        const message = (error as Error).message
        if (message.includes('CANARY') || message.includes(String(digits)))
          leaks.push(`${label}: ${message}`)
      }
    }
    expect(accepted).toEqual([])
    expect(leaks).toEqual([])
  })

  it('parses decimal and duration texts exactly', () => {
    expect(splitDecimal('-0.000')).toEqual({ negative: false, int: '', frac: '' })
    expect(splitDecimal('1.5e-3')).toEqual({ negative: false, int: '', frac: '0015' })
    expect(splitDecimal('1e+21')).toEqual({ negative: false, int: `1${'0'.repeat(21)}`, frac: '' })
    expect(durationMicros('-00:00:01')!.micros).toBe(-1_000_000n)
    expect(durationMicros('-1 days +02:00:00')!.micros).toBe(-22n * 3_600_000_000n)
  })
})

describe('native types reused in DDL', () => {
  it('accepts column types and refuses anything that could carry more SQL', async () => {
    const { isColumnTypeText } = await import('./mysql-prepare.js')
    for (const ok of [
      'int(11) unsigned',
      "enum('a;b','it''s','x\\'y') character set utf8mb4 collate utf8mb4_bin",
      'decimal(65,30)',
      'json',
      'timestamp(6)',
    ])
      expect(isColumnTypeText(ok), ok).toBe(true)
    for (const bad of [
      'int; DROP TABLE x',
      'int -- x',
      "enum('a') /* x */",
      'int, `other` int',
      "enum('a",
      'int) ENGINE=x; (',
      'int), primary key (id',
      'int, x int',
    ])
      expect(isColumnTypeText(bad), bad).toBe(false)
  })
})
