import { isTaggedValue, type SqlValue, type TaggedValue } from '@nvisy/provider-core'
import type { ColumnInfo } from './postgres-catalog.js'
import { OID, sqlValueToText } from './postgres-values.js'

/**
 * Encoders: each value is turned into the text PostgreSQL parses for the destination
 * column's DECLARED type (from pg_catalog), or refused when that text would not mean the
 * same value (a bit string of the wrong length, a decimal the server would round, a float
 * real cannot hold exactly, an integer out of range, a label the enum does not have...).
 * One encoder per column is built once per table and reused for every row.
 */
export type Encoder = (value: SqlValue | undefined) => string | null

/** Why a value cannot be written to a column: the sink reports it as that row's `data` failure. */
export class ValueRefused extends Error {
  constructor(
    readonly valueType: string,
    readonly rule: string,
  ) {
    super(`${valueType} value ${rule}`)
  }
}

/** The JS or tagged type of a value, for error messages (never the value itself). */
export function valueTypeOf(value: SqlValue | undefined): string {
  if (value === null || value === undefined) return 'null'
  if (Array.isArray(value)) return 'array'
  if (value instanceof Uint8Array) return 'Uint8Array'
  if (isTaggedValue(value)) return `tagged ${value.$type}`
  return typeof value
}

const refuse = (value: SqlValue | undefined, rule: string): never => {
  throw new ValueRefused(valueTypeOf(value), rule)
}

// ---------------------------------------------------------------------------------------
// Decimal text arithmetic (no rounding anywhere: digits and a power of ten).
// ---------------------------------------------------------------------------------------

const DECIMAL = /^\s*([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/

/** `text` as digits x 10^exponent (trailing zeros moved to the exponent), or undefined. */
export function parseDecimal(
  text: string,
): { negative: boolean; digits: string; exponent: number } | undefined {
  const m = DECIMAL.exec(text)
  if (!m) return undefined
  const whole = m[2] ?? ''
  const fraction = m[3] ?? ''
  if (whole === '' && fraction === '') return undefined
  let digits = (whole + fraction).replace(/^0+/, '')
  let exponent = Number(m[4] ?? 0) - fraction.length
  const trimmed = digits.replace(/0+$/, '')
  exponent += digits.length - trimmed.length
  digits = trimmed
  if (digits === '') exponent = 0
  return { negative: m[1] === '-' && digits !== '', digits, exponent }
}

function sameDecimal(a: string, b: string): boolean {
  const x = parseDecimal(a)
  const y = parseDecimal(b)
  return (
    x !== undefined &&
    y !== undefined &&
    x.negative === y.negative &&
    x.digits === y.digits &&
    x.exponent === y.exponent
  )
}

/**
 * Whether plain decimal text (`[+-]digits[.digits]`) fits numeric(precision, scale) exactly,
 * read without allocating: at most `precision - scale` integer digits after leading zeros and
 * `scale` fraction digits before trailing zeros. False for anything else (other text, a
 * negative scale), which the full parse below decides.
 */
export function plainDecimalFits(text: string, precision: number, scale: number): boolean {
  const n = text.length
  let i = 0
  let c = n > 0 ? text.charCodeAt(0) : 0
  if (c === 43 || c === 45) i = 1
  let integer = 0
  let digits = 0
  for (; i < n; i++) {
    c = text.charCodeAt(i)
    if (c < 48 || c > 57) break
    digits++
    if (integer > 0 || c !== 48) integer++
  }
  let fraction = 0
  if (i < n) {
    if (c !== 46) return false
    for (let at = 1, j = i + 1; j < n; j++, at++) {
      c = text.charCodeAt(j)
      if (c < 48 || c > 57) return false
      digits++
      if (c !== 48) fraction = at
    }
  }
  return digits > 0 && scale >= 0 && integer <= precision - scale && fraction <= scale
}

/** numeric(precision, scale): refuse what the server would round or overflow. */
function checkNumeric(
  value: SqlValue | undefined,
  text: string,
  precision: number,
  scale: number,
): string {
  if (plainDecimalFits(text, precision, scale)) return text
  if (/^\s*[+-]?(nan|infinity|inf)\s*$/i.test(text)) {
    if (/nan/i.test(text)) return text
    return refuse(value, `is infinite: numeric(${precision},${scale}) cannot hold infinity`)
  }
  const d = parseDecimal(text)
  if (!d) return text // not a number: the server refuses it (invalid input syntax)
  if (d.digits === '') return text
  if (d.exponent < -scale) {
    return refuse(
      value,
      `has ${-d.exponent} fractional digits: numeric(${precision},${scale}) would round it to ${scale}`,
    )
  }
  if (d.digits.length + d.exponent > precision - scale) {
    return refuse(
      value,
      `has ${d.digits.length + d.exponent} integer digits: numeric(${precision},${scale}) holds at most ${precision - scale}`,
    )
  }
  return text
}

function numberText(value: number): string {
  if (Object.is(value, -0)) return '-0'
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return 'Infinity'
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity'
  return String(value)
}

// ---------------------------------------------------------------------------------------
// Scalar encoders by type.
// ---------------------------------------------------------------------------------------

function integerEncoder(bits: 16 | 32 | 64): Encoder {
  const max = 2n ** BigInt(bits - 1) - 1n
  const min = -(2n ** BigInt(bits - 1))
  const maxN = Number(max)
  const minN = Number(min)
  const name = bits === 16 ? 'smallint' : bits === 32 ? 'integer' : 'bigint'
  const range = `${name} holds ${min} to ${max}`
  const fromBig = (value: SqlValue | undefined, n: bigint): string =>
    n < min || n > max ? refuse(value, `is out of range: ${range}`) : n.toString()
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'number':
        if (!Number.isInteger(value))
          return refuse(value, `is not an integer: ${name} takes integers`)
        if (value < minN || value > maxN || (bits === 64 && value === maxN))
          return refuse(value, `is out of range: ${range}`)
        return bits === 64 && !Number.isSafeInteger(value)
          ? BigInt(value).toString()
          : String(value + 0)
      case 'bigint':
        return fromBig(value, value)
      case 'string':
        return value
      case 'boolean':
        return value ? '1' : '0'
    }
    if (isTaggedValue(value)) {
      if (value.$type === 'decimal') {
        const m = /^\s*([+-]?\d+)(?:\.0*)?\s*$/.exec(value.value)
        if (!m) return refuse(value, `is not an integer: ${name} takes integers`)
        return fromBig(value, BigInt(m[1]!))
      }
      if (value.$type === 'bits' && /^[01]+$/.test(value.value))
        return fromBig(value, BigInt(`0b${value.value}`))
    }
    return refuse(value, `cannot be written to a ${name} column`)
  }
}

function numericEncoder(typmod: number): Encoder {
  const bounded = typmod >= 4
  const precision = bounded ? ((typmod - 4) >> 16) & 0xffff : 0
  let scale = bounded ? (typmod - 4) & 0x7ff : 0
  if (scale > 1023) scale -= 2048 // PostgreSQL 15: negative scales
  const check = (value: SqlValue | undefined, text: string) =>
    bounded ? checkNumeric(value, text, precision, scale) : text
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'number':
        return check(value, numberText(value))
      case 'bigint':
        return check(value, value.toString())
      case 'string':
        return check(value, value)
    }
    if (isTaggedValue(value) && value.$type === 'decimal') return check(value, value.value)
    return refuse(
      value,
      'cannot be written to a numeric column: it takes numbers, bigint or decimals',
    )
  }
}

/**
 * Whether `v` is a float32 value exactly, or the shortest decimal of one read as a double
 * (PostgreSQL prints real 1.1 as '1.1', which JS reads as the double 1.1): both name one
 * float32 that PostgreSQL's real input gives back exactly. PostgreSQL prints the shortest
 * decimal that reads back as the float32, the closest one when several have that length
 * (float32 -1518973.25 is '-1.5189732e+06': ...973.2 and ...973.3 are equally close); any of
 * the closest is accepted, a farther one of the same length is not.
 */
export function isFloat32(v: number): boolean {
  const f = Math.fround(v)
  if (f === v || Number.isNaN(v)) return true
  if (!Number.isFinite(f)) return false
  if (v < 0) return isFloat32(-v)
  // PostgreSQL's printer never takes a decimal on the boundary between two float32s (Ryu
  // without accepted bounds: 393296400 is halfway between 393296384 and 393296416, so
  // 393296384 prints as 3.9329638e+08), so a boundary is not a name for f here.
  const lower = (f + float32Step(f, -1)) / 2
  const upper = (f + float32Step(f, 1)) / 2
  for (let p = 1; p <= 9; p++) {
    // The nearest p-digit decimal (toExponential takes the larger on a tie) and its neighbours.
    const [mantissa, exponent] = f.toExponential(p - 1).split('e') as [string, string]
    const digits = BigInt(mantissa.replace('.', ''))
    const scale = Number(exponent) - (p - 1)
    const decimal = (d: bigint) => Number(`${d}e${scale}`)
    const roundTrips = (d: bigint) => {
      const x = decimal(d)
      return Math.fround(x) === f && x !== lower && x !== upper
    }
    const below = digits - 1n
    const above = digits + 1n
    if (roundTrips(digits)) {
      if (decimal(digits) === v) return true
      // On a tie (f is exactly halfway, so its (p+1)-digit form is exact and ends in 5), the
      // smaller neighbour is as close, and is what ties-to-even may print.
      const half = f.toPrecision(p + 1)
      const tie = Number(half) === f && /5(e[+-]\d+)?$/.test(half)
      return tie && roundTrips(below) && decimal(below) === v
    }
    // Next to a power of two the interval is lopsided: the nearest decimal may fall outside it
    // while a neighbour is inside; that neighbour is then the shortest.
    if (roundTrips(below) || roundTrips(above)) {
      return (
        (roundTrips(below) && decimal(below) === v) || (roundTrips(above) && decimal(above) === v)
      )
    }
  }
  return false
}

const float32View = new DataView(new ArrayBuffer(4))

/** The float32 next to the positive float32 `f`, up (`1`) or down (`-1`), widened to a double. */
function float32Step(f: number, direction: 1 | -1): number {
  float32View.setFloat32(0, f)
  float32View.setUint32(0, float32View.getUint32(0) + direction)
  return float32View.getFloat32(0)
}

function floatEncoder(bits: 32 | 64): Encoder {
  const name = bits === 32 ? 'real' : 'double precision'
  const exact = bits === 32 ? isFloat32 : () => true
  const inexact = `is not exactly representable as ${name} (float${bits})`
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'number':
        return exact(value) ? numberText(value) : refuse(value, inexact)
      case 'bigint': {
        const n = Number(value)
        return BigInt(n) === value && exact(n) ? String(n) : refuse(value, inexact)
      }
      case 'string':
        return value
    }
    if (isTaggedValue(value) && value.$type === 'decimal') {
      if (/^\s*[+-]?(nan|infinity)\s*$/i.test(value.value)) return value.value
      const n = Number(value.value)
      if (Number.isFinite(n) && exact(n) && sameDecimal(String(n), value.value)) return String(n)
      return refuse(value, inexact)
    }
    return refuse(value, `cannot be written to a ${name} column`)
  }
}

function booleanEncoder(): Encoder {
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'boolean':
        return value ? 't' : 'f'
      case 'string':
        return value
      case 'number':
      case 'bigint':
        if (value === 0 || value === 0n) return 'f'
        if (value === 1 || value === 1n) return 't'
        return refuse(value, 'is neither 0 nor 1: boolean takes true/false, 0/1 or bits 0/1')
    }
    if (isTaggedValue(value) && value.$type === 'bits') {
      if (value.value === '0') return 'f'
      if (value.value === '1') return 't'
      return refuse(value, 'is not one bit: boolean takes bits 0 or 1')
    }
    return refuse(value, 'cannot be written to a boolean column')
  }
}

function bitEncoder(varying: boolean, length: number): Encoder {
  const name = varying ? (length > 0 ? `bit varying(${length})` : 'bit varying') : `bit(${length})`
  const fits = (bits: number) => (varying ? length <= 0 || bits <= length : bits === length)
  const rule = varying ? `takes at most ${length} bits` : `takes exactly ${length} bits`
  const fromInteger = (value: SqlValue | undefined, n: bigint): string => {
    if (n < 0n) return refuse(value, `is negative: ${name} takes non-negative integers`)
    const digits = n.toString(2)
    if (varying)
      return fits(digits.length) ? digits : refuse(value, `does not fit: ${name} ${rule}`)
    if (digits.length > length) return refuse(value, `does not fit in ${length} bits (${name})`)
    return digits.padStart(length, '0')
  }
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'string':
        return value
      case 'boolean':
        if (varying || length === 1) return value ? '1' : '0'
        return refuse(value, `is one bit: ${name} ${rule}`)
      case 'bigint':
        return fromInteger(value, value)
      case 'number':
        if (!Number.isInteger(value))
          return refuse(value, `is not an integer: ${name} takes bits or integers`)
        return fromInteger(value, BigInt(value))
    }
    if (isTaggedValue(value) && value.$type === 'bits') {
      const bits = value.value
      if (!/^[01]*$/.test(bits)) return refuse(value, `is not a bit string of 0 and 1 (${name})`)
      if (!fits(bits.length)) return refuse(value, `has ${bits.length} bits: ${name} ${rule}`)
      return bits
    }
    return refuse(value, `cannot be written to a ${name} column`)
  }
}

const FRACTION = /:\d\d\.(\d+)/

function checkFraction(value: TaggedValue, precision: number, name: string): string {
  const text = value.value
  // The common case without a match object: no fraction, or one the column holds.
  const dot = text.indexOf('.')
  if (dot === -1) return text
  let end = dot + 1
  while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++
  if (end - dot - 1 <= precision && text.indexOf('.', end) === -1) return text
  const m = FRACTION.exec(text)
  if (m && m[1]!.length > precision && /[1-9]/.test(m[1]!.slice(precision))) {
    return refuse(
      value,
      `has ${m[1]!.length} fractional second digits: ${name} would round it to ${precision}`,
    )
  }
  return value.value
}

const UTC_SUFFIX = /(Z|[+-]00(:?00)?)$/
const WALL_CLOCK = /^\d{4,}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?$/

function timestampEncoder(withTimeZone: boolean, typmod: number): Encoder {
  const precision = typmod >= 0 ? typmod : 6
  const name = withTimeZone ? 'timestamptz' : 'timestamp'
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') return value
    if (isTaggedValue(value)) {
      switch (value.$type) {
        case 'timestamptz':
          if (withTimeZone) return checkFraction(value, precision, name)
          if (UTC_SUFFIX.test(value.value))
            return checkFraction(value, precision, name).replace(UTC_SUFFIX, '')
          return refuse(
            value,
            'has a UTC offset other than 0: timestamp (without time zone) would drop it',
          )
        case 'timestamp': {
          const text = checkFraction(value, precision, name)
          return withTimeZone && WALL_CLOCK.test(text) ? `${text}+00` : text
        }
        case 'date':
          return value.value
      }
    }
    return refuse(value, `cannot be written to a ${name} column: it takes tagged timestamps`)
  }
}

const TIME_OF_DAY = /^(\d\d):[0-5]\d:[0-5]\d(\.\d+)?$/

function timeEncoder(withTimeZone: boolean, typmod: number): Encoder {
  const precision = typmod >= 0 ? typmod : 6
  const name = withTimeZone ? 'timetz' : 'time'
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') return value
    if (isTaggedValue(value)) {
      if (value.$type === 'time') return checkFraction(value, precision, name)
      if (value.$type === 'interval') {
        const m = TIME_OF_DAY.exec(value.value)
        if (m && (Number(m[1]) < 24 || /^24:00:00(\.0*)?$/.test(value.value)))
          return checkFraction(value, precision, name)
        return refuse(value, `is not a time of day (00:00:00 to 24:00:00): ${name}`)
      }
    }
    return refuse(value, `cannot be written to a ${name} column: it takes tagged times`)
  }
}

function intervalEncoder(typmod: number): Encoder {
  const p = typmod >= 0 ? typmod & 0xffff : 0xffff
  const precision = p === 0xffff ? 6 : p
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') return value
    if (isTaggedValue(value) && (value.$type === 'interval' || value.$type === 'time'))
      return checkFraction(value, precision, 'interval')
    return refuse(value, 'cannot be written to an interval column: it takes tagged intervals')
  }
}

function dateEncoder(): Encoder {
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') return value
    if (isTaggedValue(value) && value.$type === 'date') return value.value
    return refuse(value, 'cannot be written to a date column: it takes tagged dates')
  }
}

function jsonEncoder(binary: boolean): Encoder {
  const name = binary ? 'jsonb' : 'json'
  return (value) => {
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'string':
        return value
      case 'number':
        return Number.isFinite(value)
          ? String(value)
          : refuse(value, `is not finite: ${name} numbers are finite`)
      case 'bigint':
        return value.toString()
      case 'boolean':
        return value ? 'true' : 'false'
    }
    if (isTaggedValue(value) && (value.$type === 'json' || value.$type === 'decimal'))
      return value.value
    return refuse(value, `cannot be written to a ${name} column: it takes tagged json text`)
  }
}

function byteaEncoder(): Encoder {
  return (value) => {
    if (value === null || value === undefined) return null
    if (value instanceof Uint8Array)
      return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`
    if (typeof value === 'string') return value
    return refuse(value, 'cannot be written to a bytea column: it takes bytes')
  }
}

function uuidEncoder(): Encoder {
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') return value
    if (value instanceof Uint8Array && value.length === 16) {
      const hex = Buffer.from(value.buffer, value.byteOffset, 16).toString('hex')
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
    }
    return refuse(value, 'cannot be written to a uuid column: it takes uuid text or 16 bytes')
  }
}

function characterLength(text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

function textEncoder(maxLength: number, name: string): Encoder {
  const long = (value: SqlValue | undefined, text: string): string =>
    maxLength > 0 && text.length > maxLength && characterLength(text) > maxLength
      ? refuse(value, `is longer than ${maxLength} characters (${name})`)
      : text
  return (value) => {
    if (typeof value === 'string') return maxLength > 0 ? long(value, value) : value
    if (value === null || value === undefined) return null
    switch (typeof value) {
      case 'number':
        return long(value, numberText(value))
      case 'bigint':
        return long(value, value.toString())
      case 'boolean':
        return value ? 'true' : 'false'
    }
    if (isTaggedValue(value)) return long(value, value.value)
    return refuse(value, `cannot be written to a ${name} column`)
  }
}

function enumEncoder(labels: readonly string[], name: string): Encoder {
  const allowed = new Set(labels)
  const list =
    labels.length <= 20
      ? labels.map((l) => JSON.stringify(l)).join(', ')
      : `${labels.length} labels`
  return (value) => {
    if (value === null || value === undefined) return null
    if (typeof value === 'string') {
      if (allowed.has(value)) return value
      return refuse(value, `is not a label of enum ${name} (${list})`)
    }
    return refuse(value, `cannot be written to enum ${name}: it takes one of its labels (${list})`)
  }
}

/** Anything without a dedicated encoder (inet, money, ranges, ...): PostgreSQL's text. */
const genericEncoder: Encoder = (value) => sqlValueToText(value)

function scalarEncoder(
  oid: number,
  typmod: number,
  labels: string[] | undefined,
  name: string,
): Encoder {
  if (labels) return enumEncoder(labels, name)
  switch (oid) {
    case OID.bool:
      return booleanEncoder()
    case OID.int2:
      return integerEncoder(16)
    case OID.int4:
      return integerEncoder(32)
    case OID.int8:
      return integerEncoder(64)
    case OID.numeric:
      return numericEncoder(typmod)
    case OID.float4:
      return floatEncoder(32)
    case OID.float8:
      return floatEncoder(64)
    case OID.bit:
      return bitEncoder(false, typmod > 0 ? typmod : 1)
    case OID.varbit:
      return bitEncoder(true, typmod)
    case OID.text:
    case OID.name:
      return textEncoder(0, name)
    case OID.varchar:
    case OID.bpchar:
      return textEncoder(typmod >= 4 ? typmod - 4 : 0, name)
    case OID.bytea:
      return byteaEncoder()
    case OID.uuid:
      return uuidEncoder()
    case OID.json:
      return jsonEncoder(false)
    case OID.jsonb:
      return jsonEncoder(true)
    case OID.date:
      return dateEncoder()
    case OID.time:
      return timeEncoder(false, typmod)
    case OID.timetz:
      return timeEncoder(true, typmod)
    case OID.timestamp:
      return timestampEncoder(false, typmod)
    case OID.timestamptz:
      return timestampEncoder(true, typmod)
    case OID.interval:
      return intervalEncoder(typmod)
  }
  return genericEncoder
}

function quoteElement(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

function arrayEncoder(element: Encoder, name: string): Encoder {
  const literal = (values: readonly SqlValue[], path: string): string => {
    let out = '{'
    for (let i = 0; i < values.length; i++) {
      if (i > 0) out += ','
      const v = values[i]
      if (v === null || v === undefined) out += 'NULL'
      else if (Array.isArray(v)) out += literal(v, `${path}[${i}]`)
      else {
        let text: string | null
        try {
          text = element(v as SqlValue)
        } catch (error) {
          if (error instanceof ValueRefused)
            throw new ValueRefused(`${error.valueType} element ${path}[${i}]`, error.rule)
          throw error
        }
        out += text === null ? 'NULL' : quoteElement(text)
      }
    }
    return `${out}}`
  }
  return (value) => {
    if (value === null || value === undefined) return null
    if (Array.isArray(value)) return literal(value, '')
    if (typeof value === 'string') return value
    return refuse(value, `cannot be written to an array column (${name}): it takes arrays`)
  }
}

/** The encoder of one column, from its declared type in the catalog. */
export function encoderFor(column: ColumnInfo): Encoder {
  const oid = column.baseOid || column.oid
  if (column.elementOid) {
    const elementName = column.baseTypeName.replace(/\[\]$/, '')
    if (column.elementOid === 603) return genericEncoder // box[]: ';' delimited
    return arrayEncoder(
      scalarEncoder(column.elementOid, column.typmod, column.labels, elementName),
      column.baseTypeName,
    )
  }
  return scalarEncoder(oid, column.typmod, column.labels, column.baseTypeName)
}

/** Encoders for `columns` of a table, cached on the table info (built once per table). */
export function encodersFor(
  byName: ReadonlyMap<string, ColumnInfo>,
  cache: Map<string, Encoder>,
  columns: readonly string[],
): Encoder[] {
  return columns.map((name) => {
    let encoder = cache.get(name)
    if (!encoder) {
      encoder = encoderFor(byName.get(name)!)
      cache.set(name, encoder)
    }
    return encoder
  })
}
