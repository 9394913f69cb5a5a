import { type SqlValue, tagged } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import type { ColumnInfo } from './postgres-catalog.js'
import {
  encoderFor,
  isFloat32,
  parseDecimal,
  plainDecimalFits,
  ValueRefused,
} from './postgres-encode.js'
import { OID } from './postgres-values.js'

function column(
  oid: number,
  typmod = -1,
  extra: Partial<ColumnInfo> = {},
  typeName = 'some type',
): ColumnInfo {
  return {
    name: 'c',
    oid,
    elementOid: 0,
    baseOid: 0,
    typeName,
    baseTypeName: typeName,
    nullable: true,
    primaryKeyPosition: 0,
    typmod,
    ...extra,
  }
}

const numericTypmod = (p: number, s: number) => ((p << 16) | (s & 0x7ff)) + 4

function refusal(encode: (v: SqlValue) => unknown, value: SqlValue): string {
  try {
    encode(value)
  } catch (error) {
    expect(error).toBeInstanceOf(ValueRefused)
    return (error as Error).message
  }
  throw new Error(`expected ${String(value)} to be refused`)
}

describe('encoding for the declared column type', () => {
  it('bit(n) and varbit(n) from tagged bits, booleans and integers', () => {
    const bit1 = encoderFor(column(OID.bit, 1))
    const bit64 = encoderFor(column(OID.bit, 64))
    const varbit = encoderFor(column(OID.varbit, 10))
    expect(bit1(tagged('bits', '1'))).toBe('1')
    expect(bit1(true)).toBe('1')
    expect(bit1(false)).toBe('0')
    expect(bit1(1)).toBe('1')
    expect(refusal(bit1, tagged('bits', '10'))).toMatch(
      /tagged bits .*2 bits.*bit\(1\) takes exactly 1/,
    )
    expect(bit64(2n ** 63n + 5n)).toBe(`1${'0'.repeat(60)}101`)
    expect(bit64(0n)).toBe('0'.repeat(64))
    expect(refusal(bit64, 2n ** 64n)).toMatch(/bigint .*does not fit in 64 bits/)
    expect(refusal(bit64, -1n)).toMatch(/negative/)
    expect(refusal(bit64, true)).toMatch(/boolean/)
    expect(varbit(tagged('bits', '101'))).toBe('101')
    expect(varbit(5)).toBe('101')
    expect(refusal(varbit, tagged('bits', '10101010101'))).toMatch(/at most 10 bits/)
    expect(bit1(null)).toBeNull()
  })

  it('boolean from booleans, bits and 0/1', () => {
    const b = encoderFor(column(OID.bool))
    expect([true, false, tagged('bits', '1'), tagged('bits', '0'), 1, 0, 1n].map(b)).toEqual([
      't',
      'f',
      't',
      'f',
      't',
      'f',
      't',
    ])
    expect(refusal(b, 2)).toMatch(/neither 0 nor 1/)
  })

  it('numeric(p,s) refuses what PostgreSQL would round or overflow', () => {
    const n = encoderFor(column(OID.numeric, numericTypmod(10, 2)))
    expect(n(tagged('decimal', '12345678.91'))).toBe('12345678.91')
    expect(n(tagged('decimal', '1.500'))).toBe('1.500')
    expect(n(12n)).toBe('12')
    expect(n(0.5)).toBe('0.5')
    expect(n(tagged('decimal', 'NaN'))).toBe('NaN')
    expect(refusal(n, tagged('decimal', '1.234'))).toMatch(
      /tagged decimal .*3 fractional digits: numeric\(10,2\) would round it to 2/,
    )
    expect(refusal(n, 0.1 + 0.2)).toMatch(/fractional digits/)
    expect(refusal(n, tagged('decimal', '123456789.1'))).toMatch(/9 integer digits.*at most 8/)
    expect(refusal(n, 1e300)).toMatch(/integer digits/)
    expect(refusal(n, Number.POSITIVE_INFINITY)).toMatch(/infinity/)
    const unbounded = encoderFor(column(OID.numeric))
    expect(unbounded(tagged('decimal', '1.23456789012345678901234567890'))).toBe(
      '1.23456789012345678901234567890',
    )
    const negativeScale = encoderFor(column(OID.numeric, numericTypmod(5, -2)))
    expect(negativeScale(1200n)).toBe('1200')
    expect(refusal(negativeScale, 1234n)).toMatch(/round/)
  })

  it('the allocation-free numeric(p,s) check agrees with the full decimal parse on plain decimals', () => {
    // The full rule: digits x 10^exponent fits when exponent >= -scale and its integer digits
    // (digits + exponent) are at most precision - scale; zero always fits.
    const fullRule = (text: string, precision: number, scale: number) => {
      const d = parseDecimal(text)
      if (!d) return undefined
      return (
        d.digits === '' ||
        (d.exponent >= -scale && d.digits.length + d.exponent <= precision - scale)
      )
    }
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    const pieces = ['0', '00', '1', '9', '10', '120', '5', '0000', '']
    const texts = [
      '0',
      '-0',
      '+0.00',
      '.5',
      '5.',
      '-.0',
      '',
      '+',
      '-',
      '.',
      '1e3',
      ' 1',
      '1.2.3',
      'NaN',
    ]
    for (let i = 0; i < 4000; i++) {
      const sign = ['', '-', '+'][random(3)]!
      const whole = Array.from({ length: random(4) }, () => pieces[random(pieces.length)]).join('')
      const fraction = Array.from({ length: random(4) }, () => pieces[random(pieces.length)]).join(
        '',
      )
      texts.push(random(4) === 0 ? `${sign}${whole}` : `${sign}${whole}.${fraction}`)
    }
    for (const [precision, scale] of [
      [10, 2],
      [4, 4],
      [5, 0],
      [38, 18],
      [3, 1],
    ] as const) {
      for (const text of texts) {
        const fits = plainDecimalFits(text, precision, scale)
        const plain = /^[+-]?\d*(\.\d*)?$/.test(text) && /\d/.test(text)
        // Never accepts what the full rule refuses; on plain decimal text, decides the same.
        if (fits)
          expect(fullRule(text, precision, scale), `${text} in (${precision},${scale})`).toBe(true)
        if (plain)
          expect(fits, `${text} in (${precision},${scale})`).toBe(fullRule(text, precision, scale))
      }
    }
  })

  it('real only from exact float32 values, double precision in shortest round-trip text', () => {
    const real = encoderFor(column(OID.float4))
    const double = encoderFor(column(OID.float8))
    expect(real(1.5)).toBe('1.5')
    expect(real(Math.fround(0.1))).toBe(String(Math.fround(0.1)))
    expect(real(1.1)).toBe('1.1') // PostgreSQL prints real 1.1 as '1.1'
    // Ties: float32 -1518973.25 sits halfway between the 8-digit decimals ...973.2 and ...973.3;
    // PostgreSQL (shortest round-trip, ties to even) prints -1.5189732e+06, which JS's
    // toPrecision(8) would not produce (it rounds half up).
    expect(real(-1518973.2)).toBe('-1518973.2')
    expect(real(393296380)).toBe('393296380') // PostgreSQL: -3.9329638e+08 for 393296384
    expect(real(3740405.2)).toBe('3740405.2')
    expect(real(3740405.3)).toBe('3740405.3') // the other, equally close, side of the tie
    // A decimal of the shortest length that is not the closest is refused (3740405.5 is).
    expect(refusal(real, 3740405.4)).toMatch(/not exactly representable as real/)
    expect(isFloat32(0.1 + 0.2)).toBe(false)
    expect(refusal(real, 0.1 + 0.2)).toMatch(/not exactly representable as real/)
    expect(refusal(real, 2n ** 60n + 1n)).toMatch(/not exactly representable/)
    expect(real(Number.NaN)).toBe('NaN')
    expect(double(0.1 + 0.2)).toBe('0.30000000000000004')
    expect(double(-0)).toBe('-0')
    expect([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(double)).toEqual([
      'NaN',
      'Infinity',
      '-Infinity',
    ])
    expect(refusal(double, 2n ** 53n + 1n)).toMatch(/double precision/)
    expect(refusal(double, tagged('decimal', '0.1000000000000000000001'))).toMatch(/double/)
  })

  it('integers refuse out-of-range values instead of failing the batch', () => {
    const int2 = encoderFor(column(OID.int2))
    const int8 = encoderFor(column(OID.int8))
    expect(int2(32767)).toBe('32767')
    expect(refusal(int2, 32768)).toMatch(/out of range: smallint holds -32768 to 32767/)
    expect(refusal(int2, 1.5)).toMatch(/not an integer/)
    expect(int8(-(2n ** 63n))).toBe('-9223372036854775808')
    expect(refusal(int8, 2n ** 63n)).toMatch(/out of range/)
    expect(refusal(int8, 2 ** 63)).toMatch(/out of range/)
    expect(int8(tagged('decimal', '18446744073'))).toBe('18446744073')
    expect(int8(tagged('bits', '1111'))).toBe('15')
  })

  it('temporal values: interval from MySQL TIME and ISO 8601, timestamptz in explicit UTC, precision kept', () => {
    const interval = encoderFor(column(OID.interval))
    expect(interval(tagged('interval', '-838:59:59.000000'))).toBe('-838:59:59.000000')
    expect(interval(tagged('interval', 'P1DT2H'))).toBe('P1DT2H')
    expect(refusal(interval, 5)).toMatch(/number .*interval/)
    const tz = encoderFor(column(OID.timestamptz))
    expect(tz(tagged('timestamp', '2024-02-29T13:45:00.123456'))).toBe(
      '2024-02-29T13:45:00.123456+00',
    )
    expect(tz(tagged('timestamptz', '2024-02-29T13:45:00Z'))).toBe('2024-02-29T13:45:00Z')
    expect(tz(tagged('timestamp', 'infinity'))).toBe('infinity')
    expect(refusal(tz, tagged('timestamptz', '2024-02-29T13:45:00.1234567Z'))).toMatch(
      /7 fractional second digits.*round it to 6/,
    )
    // Digits past the precision are refused only when one of them is not zero.
    expect(tz(tagged('timestamptz', '2024-02-29T13:45:00.1234560Z'))).toBe(
      '2024-02-29T13:45:00.1234560Z',
    )
    expect(tz(tagged('timestamptz', '2024-02-29T13:45:00.123456+00'))).toBe(
      '2024-02-29T13:45:00.123456+00',
    )
    const ts0 = encoderFor(column(OID.timestamp, 0))
    expect(refusal(ts0, tagged('timestamp', '2024-02-29T13:45:00.5'))).toMatch(/round/)
    expect(ts0(tagged('timestamp', '2024-02-29T13:45:00.000'))).toBe('2024-02-29T13:45:00.000')
    expect(ts0(tagged('timestamp', '2024-02-29T13:45:00'))).toBe('2024-02-29T13:45:00')
    const ts3 = encoderFor(column(OID.timestamp, 3))
    expect(ts3(tagged('timestamp', '2024-02-29T13:45:00.123'))).toBe('2024-02-29T13:45:00.123')
    expect(refusal(ts3, tagged('timestamp', '2024-02-29T13:45:00.1234'))).toMatch(
      /4 fractional second digits.*round it to 3/,
    )
    expect(ts0(tagged('timestamptz', '2024-02-29T13:45:00Z'))).toBe('2024-02-29T13:45:00')
    expect(refusal(ts0, tagged('timestamptz', '2024-02-29T13:45:00+02:00'))).toMatch(/offset/)
    const time = encoderFor(column(OID.time))
    expect(time(tagged('interval', '12:30:00.000000'))).toBe('12:30:00.000000')
    expect(refusal(time, tagged('interval', '-01:00:00'))).toMatch(/time of day/)
  })

  it('enums, arrays (recursive), json text byte-exact, bytea, uuid, varchar(n)', () => {
    const mood = encoderFor(column(0, -1, { labels: ['happy', 'sad'] }, 'mood'))
    expect(mood('sad')).toBe('sad')
    expect(refusal(mood, 'angry')).toMatch(/not a label of enum mood \("happy", "sad"\)/)
    const ints = encoderFor(column(1007, -1, { elementOid: OID.int4 }, 'integer[]'))
    expect(ints([1, null, 3])).toBe('{"1",NULL,"3"}')
    expect(ints([[1], [2]])).toBe('{{"1"},{"2"}}')
    expect(refusal(ints, [1, 2.5])).toMatch(/number element \[1\] .*not an integer/)
    const texts = encoderFor(column(1009, -1, { elementOid: OID.text }, 'text[]'))
    expect(texts(['a"b', 'c\\d', 'NULL'])).toBe('{"a\\"b","c\\\\d","NULL"}')
    const json = encoderFor(column(OID.json))
    expect(json(tagged('json', '{"a": 1, "a": 2}'))).toBe('{"a": 1, "a": 2}')
    const bytea = encoderFor(column(OID.bytea))
    expect(bytea(new Uint8Array([0, 255]))).toBe('\\x00ff')
    expect(refusal(bytea, 5)).toMatch(/bytea/)
    const uuid = encoderFor(column(OID.uuid))
    expect(uuid(new Uint8Array(16).fill(0xab))).toBe('abababab-abab-abab-abab-abababababab')
    const varchar = encoderFor(column(OID.varchar, 3 + 4, {}, 'character varying(3)'))
    expect(varchar('😀😀😀')).toBe('😀😀😀')
    expect(refusal(varchar, 'abcd')).toMatch(/longer than 3 characters/)
  })

  it('parses decimal text into digits and a power of ten', () => {
    expect(parseDecimal('-0012.3400')).toEqual({ negative: true, digits: '1234', exponent: -2 })
    expect(parseDecimal('1e+21')).toEqual({ negative: false, digits: '1', exponent: 21 })
    expect(parseDecimal('0.000')).toEqual({ negative: false, digits: '', exponent: 0 })
    expect(parseDecimal('abc')).toBeUndefined()
  })
})

describe('reused native types (schema from postgres)', () => {
  it('accepts one type name and refuses anything that would change the statement', async () => {
    const { isOneTypeName, columnDefinition } = await import('./postgres-ddl.js')
    for (const ok of [
      'numeric(20,6)',
      'timestamp(6) without time zone',
      'character varying(40)[]',
      '"My ""Type"""',
      'public.citext',
      'bit varying(10)',
    ])
      expect(isOneTypeName(ok), ok).toBe(true)
    for (const bad of [
      'int, evil text',
      'int); DROP TABLE x; --',
      'int) --',
      'numeric(1',
      '"unclosed',
      "text DEFAULT 'x'",
    ])
      expect(isOneTypeName(bad), bad).toBe(false)
    expect(() =>
      columnDefinition(
        { name: 'c', nativeType: 'int, evil text', type: { type: 'other' }, nullable: true },
        'postgres',
      ),
    ).toThrow(/not a type name/)
  })
})
