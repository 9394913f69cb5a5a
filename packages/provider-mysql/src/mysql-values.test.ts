import { tagged } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { keysetSql, keysetUpToSql } from './mysql-source.js'
import {
  type ColumnInfo,
  cursorLiteral,
  decoderFor,
  instantToUtcText,
  quoteId,
  quoteString,
  toCursorValue,
  toLiteral,
} from './mysql-values.js'

const column = (
  dataType: string,
  columnType = dataType,
  extra: Partial<ColumnInfo> = {},
): ColumnInfo => ({
  name: 'c',
  dataType,
  columnType,
  nullable: true,
  primaryKeyPosition: 0,
  json: false,
  ...extra,
})

describe('identifiers and strings', () => {
  it('quotes identifiers with backticks, doubling backticks', () => {
    expect(quoteId('a')).toBe('`a`')
    expect(quoteId('we`ird; DROP TABLE x; --')).toBe('`we``ird; DROP TABLE x; --`')
    expect(quoteId('名前 space')).toBe('`名前 space`')
    expect(() => quoteId('a\u0000b')).toThrow(/NUL/)
    expect(() => quoteId('')).toThrow()
  })

  it('escapes every character MySQL treats specially in a string', () => {
    expect(quoteString('plain')).toBe("'plain'")
    expect(quoteString(`it's "x" \\ \n\r\t\b\u0000\u001a`)).toBe(
      `'it\\'s \\"x\\" \\\\ \\n\\r\\t\\b\\0\\Z'`,
    )
    expect(quoteString("' OR '1'='1")).toBe("'\\' OR \\'1\\'=\\'1'")
  })
})

describe('toLiteral', () => {
  it('encodes each SqlValue', () => {
    expect(toLiteral(null, undefined)).toBe('NULL')
    expect(toLiteral(undefined, undefined)).toBe('NULL')
    expect(toLiteral(true, undefined)).toBe('1')
    expect(toLiteral(false, undefined)).toBe('0')
    expect(toLiteral(1.5, undefined)).toBe('1.5')
    expect(toLiteral(-9223372036854775808n, undefined)).toBe('-9223372036854775808')
    expect(toLiteral(new Uint8Array([0, 255]), undefined)).toBe("X'00ff'")
    expect(toLiteral(new Uint8Array([1]), column('point'))).toBe("ST_GeomFromWKB(X'01')")
    expect(toLiteral(tagged('decimal', '-1.50'), undefined)).toBe("'-1.50'")
    expect(toLiteral(tagged('timestamp', '2024-02-29T13:45:00.123456'), undefined)).toBe(
      "'2024-02-29 13:45:00.123456'",
    )
    expect(toLiteral(tagged('timestamptz', '2024-02-29T13:45:00.123456Z'), undefined)).toBe(
      "'2024-02-29 13:45:00.123456'",
    )
    expect(toLiteral(tagged('json', `{"a":"'"}`), undefined)).toBe(`'{\\"a\\":\\"\\'\\"}'`)
    expect(toLiteral(['x', 'z'], undefined)).toBe("'x,z'")
  })

  it('refuses values that cannot be stored', () => {
    expect(() => toLiteral(Number.NaN, undefined)).toThrow(TypeError)
    expect(() => toLiteral(Number.POSITIVE_INFINITY, undefined)).toThrow(TypeError)
    expect(() => toLiteral(tagged('decimal', '1; DROP TABLE x'), undefined)).toThrow(TypeError)
    expect(() => toLiteral([1, 2] as never, undefined)).toThrow(TypeError)
    expect(() => toLiteral({ a: 1 } as never, undefined)).toThrow(TypeError)
  })

  it('names the type and the rule of a refusal, never the value', () => {
    const canary = 'CANARY-5f3a9c1e-values'
    const messageOf = (fn: () => unknown) => {
      try {
        fn()
      } catch (error) {
        return (error as Error).message
      }
      throw new Error('not refused')
    }
    const messages = [
      messageOf(() => toLiteral(tagged('decimal', canary), undefined)),
      messageOf(() => toLiteral(tagged('decimal', `1; ${canary}`), column('uuid'))),
      messageOf(() => toLiteral([`a,${canary}`, 'b'], undefined)),
      messageOf(() => instantToUtcText(`2024-01-01T${canary}+02:00`)),
      messageOf(() => cursorLiteral(`2024-01-01T${canary}+02:00`, column('timestamp'))),
    ]
    for (const message of messages) expect(message).not.toContain('CANARY')
    expect(messageOf(() => toLiteral(Number.NaN, undefined))).toMatch(/not finite/)
  })

  it('converts instants with an offset to UTC, keeping the fraction', () => {
    expect(instantToUtcText('2024-03-01T01:30:00.000007+02:00')).toBe('2024-02-29 23:30:00.000007')
    expect(instantToUtcText('2024-12-31T23:30:00-01:00')).toBe('2025-01-01 00:30:00')
    expect(instantToUtcText('2024-01-01T00:00:00Z')).toBe('2024-01-01 00:00:00')
  })
})

describe('decoders', () => {
  const decode = (c: ColumnInfo, raw: unknown, tinyint1AsBoolean = false) => {
    const decoder = decoderFor(c, { tinyint1AsBoolean })
    return decoder ? decoder(raw) : raw
  }
  it('maps mysql2 text values to exact SqlValues', () => {
    expect(decode(column('bigint'), '-9223372036854775808')).toBe(-9223372036854775808n)
    expect(decode(column('decimal'), '1.10')).toEqual(tagged('decimal', '1.10'))
    expect(decode(column('datetime'), '2024-01-01 00:00:00.000001')).toEqual(
      tagged('timestamp', '2024-01-01T00:00:00.000001'),
    )
    expect(decode(column('timestamp'), '2024-01-01 00:00:00')).toEqual(
      tagged('timestamptz', '2024-01-01T00:00:00Z'),
    )
    expect(decode(column('date'), '2024-01-01')).toEqual(tagged('date', '2024-01-01'))
    expect(decode(column('time', 'time(6)'), '-838:59:59.000000')).toEqual(
      tagged('interval', '-838:59:59.000000'),
    )
    expect(decode(column('longtext', 'longtext', { json: true }), '{"a":1}')).toEqual(
      tagged('json', '{"a":1}'),
    )
    expect(decode(column('bit', 'bit(1)'), Buffer.from([1]))).toEqual(tagged('bits', '1'))
    expect(decode(column('bit', 'bit(10)'), Buffer.from([2, 1]))).toEqual(
      tagged('bits', '1000000001'),
    )
    expect(decode(column('bit', 'bit(64)'), Buffer.alloc(8, 0xff))).toEqual(
      tagged('bits', '1'.repeat(64)),
    )
    expect(decode(column('double'), '90.33333333333333')).toBe(271 / 3)
    expect(decode(column('tinyint', 'tinyint(1)'), 1)).toBe(1)
    expect(decode(column('tinyint', 'tinyint(1)'), 1, true)).toBe(true)
    expect(decode(column('tinyint', 'tinyint(1)'), 7, true)).toBe(7)
    expect(decode(column('bigint'), null)).toBeNull()
  })
  it('refuses zero dates naming the column and row key, or reads them as null', () => {
    const c = column('date')
    const strict = decoderFor(c, { tinyint1AsBoolean: false, rowKey: () => '(id=7)' })!
    expect(() => strict('0000-00-00', [7])).toThrow(/column "c" holds a zero date.*\(id=7\)/)
    expect(() => strict('2024-00-10', [7])).toThrow(expect.objectContaining({ kind: 'data' }))
    // The date itself (a birth date with a zero day, say) is a value: it is not quoted.
    expect(() => strict('1985-07-00', [7])).toThrow(/^(?![\s\S]*1985)[\s\S]*zero date/)
    const lax = decoderFor(column('datetime'), { tinyint1AsBoolean: false, zeroDates: 'null' })!
    expect(lax('2024-01-00 10:00:00')).toBeNull()
    expect(lax('2024-01-01 10:00:00')).toEqual(tagged('timestamp', '2024-01-01T10:00:00'))
  })
})

describe('cursor values', () => {
  it('round-trip through JSON to typed literals', () => {
    expect(toCursorValue(12345678901234567890n)).toBe('12345678901234567890')
    expect(cursorLiteral('12345678901234567890', column('bigint'))).toBe('12345678901234567890')
    expect(cursorLiteral(toCursorValue(Buffer.from([1, 2])), column('varbinary'))).toBe("X'0102'")
    expect(cursorLiteral('2024-01-01T00:00:00.5Z', column('timestamp'))).toBe(
      "'2024-01-01 00:00:00.5'",
    )
    expect(cursorLiteral("a'b", column('varchar'))).toBe("'a\\'b'")
    expect(cursorLiteral(null, column('int'))).toBe('NULL')
  })
  it('refuse values that do not fit the column type', () => {
    expect(() => cursorLiteral('1 OR 1=1', column('int'))).toThrow(/does not fit/)
    expect(() => cursorLiteral('1; --', column('decimal'))).toThrow(/does not fit/)
    expect(() => cursorLiteral("2024' OR '1", column('date'))).toThrow(/does not fit/)
  })
  it('builds the keyset condition with NULLs sorting first', () => {
    const a = { ...column('int'), name: 'a' }
    const b = { ...column('varchar'), name: 'b`x' }
    expect(keysetSql([a], [5])).toBe('`a` > 5')
    expect(keysetSql([a, b], [5, 'q'])).toBe(
      "`a` >= 5 AND ((`a` > 5) OR (`a` = 5 AND `b``x` > 'q'))",
    )
    expect(keysetSql([a, b], [null, 'q'])).toBe(
      "(`a` IS NOT NULL) OR (`a` IS NULL AND `b``x` > 'q')",
    )
  })
  it('builds the inclusive upper bound of a key range', () => {
    const a = { ...column('int'), name: 'a' }
    const b = { ...column('varchar'), name: 'b`x' }
    expect(keysetUpToSql([a], [5])).toBe('`a` <= 5 AND ((`a` < 5) OR (`a` = 5))')
    expect(keysetUpToSql([a, b], [5, 'q'])).toBe(
      "`a` <= 5 AND ((`a` < 5) OR (`a` = 5 AND `b``x` < 'q') OR (`a` = 5 AND `b``x` = 'q'))",
    )
    expect(() => keysetUpToSql([a], ['5 OR 1=1'])).toThrow(/does not fit/)
  })
})
