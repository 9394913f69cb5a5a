import { type GraphValue, isTaggedValue, type TaggedValue, tagged } from '@nvisy/provider-core'
import neo4j, {
  Date as CypherDate,
  DateTime,
  Duration,
  isDate,
  isDateTime,
  isDuration,
  isLocalDateTime,
  isLocalTime,
  isPoint,
  isTime,
  LocalDateTime,
  LocalTime,
  Point,
  Time,
} from 'neo4j-driver'

/**
 * Neo4j values <-> core graph values, without precision loss:
 *   Integer (int64)  <-> bigint                 Float <-> number
 *   Date             <-> date        '2024-02-29'
 *   LocalTime        <-> time        '13:45:00.123456789'
 *   Time             <-> time        '13:45:00.123456789+02:00'
 *   LocalDateTime    <-> timestamp   '2024-02-29T13:45:00.123456789'
 *   DateTime         <-> timestamptz '2024-02-29T11:45:00.123456789Z' (the instant, in UTC)
 *   Duration         <-> interval    'P14M3DT3600.000000001S' (months, days, seconds)
 *   Point            <-> json        '{"type":"Point","srid":4326,"coordinates":[x,y(,z)]}'
 *   ByteArray        <-> Uint8Array  lists <-> arrays
 * Fractions always have nine digits (nanoseconds); a zero fraction is written as .000000000.
 */

export class ValueError extends Error {}

const INT64_MIN = -(1n << 63n)
const INT64_MAX = (1n << 63n) - 1n

const pad = (n: number | bigint, width: number) => String(n).padStart(width, '0')

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(typeof v === 'bigint' ? v : String(v))
}

function formatYear(year: number): string {
  if (year < 0) return `-${pad(-year, 4)}`
  if (year > 9999) return `+${year}`
  return pad(year, 4)
}

function formatDate(year: number, month: number, day: number): string {
  return `${formatYear(year)}-${pad(month, 2)}-${pad(day, 2)}`
}

function formatTime(hour: number, minute: number, second: number, nanosecond: number): string {
  return `${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(nanosecond, 9)}`
}

function formatOffset(seconds: number): string {
  if (seconds === 0) return 'Z'
  const sign = seconds < 0 ? '-' : '+'
  const abs = Math.abs(seconds)
  const hh = pad(Math.floor(abs / 3600), 2)
  const mm = pad(Math.floor((abs % 3600) / 60), 2)
  const ss = abs % 60
  return `${sign}${hh}:${mm}${ss ? `:${pad(ss, 2)}` : ''}`
}

/** Seconds since the epoch of a wall-clock date and time read as UTC. */
function utcSeconds(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const date = new Date(0)
  date.setUTCFullYear(y, mo - 1, d)
  date.setUTCHours(h, mi, s, 0)
  return date.getTime() / 1000
}

function formatDuration(
  months: bigint,
  days: bigint,
  seconds: bigint,
  nanoseconds: bigint,
): string {
  const total = seconds * 1_000_000_000n + nanoseconds
  const negative = total < 0n
  const abs = negative ? -total : total
  const whole = abs / 1_000_000_000n
  const fraction = abs % 1_000_000_000n
  const secondsText = `${negative ? '-' : ''}${whole}${fraction ? `.${pad(fraction, 9)}` : ''}`
  return `P${months}M${days}DT${secondsText}S`
}

function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v
  if (typeof v === 'number') return BigInt(v)
  return BigInt(String(v))
}

/** A value as the driver returns it (created with useBigInt) -> a core graph value. */
export function fromNeo4j(value: unknown): GraphValue {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return value
  }
  if (neo4j.isInt(value)) return BigInt(value.toString())
  if (value instanceof Int8Array)
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength))
  if (Array.isArray(value)) return value.map(fromNeo4j)
  const v = value as any
  if (isDate(v)) return tagged('date', formatDate(num(v.year), num(v.month), num(v.day)))
  if (isLocalTime(v))
    return tagged('time', formatTime(num(v.hour), num(v.minute), num(v.second), num(v.nanosecond)))
  if (isTime(v)) {
    return tagged(
      'time',
      `${formatTime(num(v.hour), num(v.minute), num(v.second), num(v.nanosecond))}${formatOffset(num(v.timeZoneOffsetSeconds))}`,
    )
  }
  if (isLocalDateTime(v)) {
    return tagged(
      'timestamp',
      `${formatDate(num(v.year), num(v.month), num(v.day))}T${formatTime(num(v.hour), num(v.minute), num(v.second), num(v.nanosecond))}`,
    )
  }
  if (isDateTime(v)) {
    const local = utcSeconds(
      num(v.year),
      num(v.month),
      num(v.day),
      num(v.hour),
      num(v.minute),
      num(v.second),
    )
    const offset =
      v.timeZoneOffsetSeconds === undefined || v.timeZoneOffsetSeconds === null
        ? 0
        : num(v.timeZoneOffsetSeconds)
    const at = new Date((local - offset) * 1000)
    return tagged(
      'timestamptz',
      `${formatDate(at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate())}T${formatTime(at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds(), num(v.nanosecond))}Z`,
    )
  }
  if (isDuration(v))
    return tagged(
      'interval',
      formatDuration(big(v.months), big(v.days), big(v.seconds), big(v.nanoseconds)),
    )
  if (isPoint(v)) {
    const coordinates = [num(v.x), num(v.y)]
    if (v.z !== undefined && v.z !== null) coordinates.push(num(v.z))
    return tagged('json', JSON.stringify({ type: 'Point', srid: num(v.srid), coordinates }))
  }
  throw new ValueError(`unsupported Neo4j value of type ${Object.prototype.toString.call(value)}`)
}

// ------------------------------------------------------------------------------ write side

const DATE_RE = /^([+-]?\d{4,9})-(\d{2})-(\d{2})$/
const TIME_RE =
  /^(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/
const DURATION_RE =
  /^([+-])?P(?:([+-]?\d+)Y)?(?:([+-]?\d+)M)?(?:([+-]?\d+)W)?(?:([+-]?\d+)D)?(?:T(?:([+-]?\d+)H)?(?:([+-]?\d+)M)?(?:([+-]?\d+)(?:[.,](\d{1,9}))?S)?)?$/

interface ParsedTime {
  hour: number
  minute: number
  second: number
  nanosecond: number
  offset: number | undefined
}

function parseOffset(text: string): number {
  if (text === 'Z') return 0
  const sign = text[0] === '-' ? -1 : 1
  const digits = text.slice(1).replace(/:/g, '')
  const h = Number(digits.slice(0, 2))
  const m = Number(digits.slice(2, 4) || '0')
  const s = Number(digits.slice(4, 6) || '0')
  return sign * (h * 3600 + m * 60 + s)
}

function parseTime(text: string): ParsedTime | undefined {
  const m = TIME_RE.exec(text)
  if (!m) return undefined
  const time = {
    hour: Number(m[1]),
    minute: Number(m[2]),
    second: Number(m[3] ?? '0'),
    nanosecond: Number((m[4] ?? '').padEnd(9, '0')),
    offset: m[5] === undefined ? undefined : parseOffset(m[5]),
  }
  if (time.hour > 23 || time.minute > 59 || time.second > 59) return undefined
  return time
}

function parseDate(text: string): { year: number; month: number; day: number } | undefined {
  const m = DATE_RE.exec(text)
  if (!m) return undefined
  const date = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) }
  if (date.month < 1 || date.month > 12 || date.day < 1 || date.day > 31) return undefined
  return date
}

function splitDateTime(text: string): [string, string] | undefined {
  const i = text.search(/[T ]/)
  return i < 0 ? undefined : [text.slice(0, i), text.slice(i + 1)]
}

function toDuration(text: string): Duration<bigint> {
  const m = DURATION_RE.exec(text)
  if (!m || text === 'P' || text.endsWith('T'))
    throw new ValueError(`interval ${JSON.stringify(text)} is not an ISO 8601 duration`)
  const sign = m[1] === '-' ? -1n : 1n
  const n = (i: number) => BigInt(m[i] ?? '0')
  const months = sign * (n(2) * 12n + n(3))
  const days = sign * (n(4) * 7n + n(5))
  const secondsPart = m[8] ?? '0'
  const fraction = BigInt((m[9] ?? '').padEnd(9, '0'))
  const secondNanos =
    BigInt(secondsPart) * 1_000_000_000n + (secondsPart.startsWith('-') ? -fraction : fraction)
  const totalNanos = sign * ((n(6) * 3600n + n(7) * 60n) * 1_000_000_000n + secondNanos)
  let seconds = totalNanos / 1_000_000_000n
  let nanos = totalNanos % 1_000_000_000n
  if (nanos < 0n) {
    nanos += 1_000_000_000n
    seconds -= 1n
  }
  return new Duration(months, days, seconds, nanos)
}

function isPointJson(
  value: unknown,
): value is { type: 'Point'; srid: number; coordinates: number[] } {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    v.type === 'Point' &&
    Number.isInteger(v.srid) &&
    Array.isArray(v.coordinates) &&
    (v.coordinates.length === 2 || v.coordinates.length === 3) &&
    v.coordinates.every((c) => typeof c === 'number' && Number.isFinite(c)) &&
    Object.keys(v).every((k) => k === 'type' || k === 'srid' || k === 'coordinates')
  )
}

function fromTagged(value: TaggedValue): unknown {
  const text = value.value
  const bad = () =>
    new ValueError(`${value.$type} ${JSON.stringify(text)} is not a valid ${value.$type} value`)
  switch (value.$type) {
    case 'date': {
      const d = parseDate(text)
      if (!d) throw bad()
      return new CypherDate(d.year, d.month, d.day)
    }
    case 'time': {
      const t = parseTime(text)
      if (!t) throw bad()
      return t.offset === undefined
        ? new LocalTime(t.hour, t.minute, t.second, t.nanosecond)
        : new Time(t.hour, t.minute, t.second, t.nanosecond, t.offset)
    }
    case 'timestamp':
    case 'timestamptz': {
      const parts = splitDateTime(text)
      const d = parts && parseDate(parts[0])
      const t = parts && parseTime(parts[1])
      if (!d || !t) throw bad()
      if (t.offset === undefined) {
        if (value.$type === 'timestamptz')
          throw new ValueError(`timestamptz ${JSON.stringify(text)} has no offset (end it with Z)`)
        return new LocalDateTime(d.year, d.month, d.day, t.hour, t.minute, t.second, t.nanosecond)
      }
      return new DateTime(
        d.year,
        d.month,
        d.day,
        t.hour,
        t.minute,
        t.second,
        t.nanosecond,
        t.offset,
      )
    }
    case 'interval':
      return toDuration(text)
    case 'json': {
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        throw bad()
      }
      if (isPointJson(parsed)) {
        const [x, y, z] = parsed.coordinates
        return new Point(parsed.srid, x!, y!, z)
      }
      return text
    }
    case 'decimal':
      return text
  }
  throw new ValueError(`unknown tagged value type ${JSON.stringify((value as TaggedValue).$type)}`)
}

function category(value: unknown): string {
  if (typeof value === 'bigint' || typeof value === 'number') return 'number'
  if (typeof value === 'string' || typeof value === 'boolean') return typeof value
  return (value as object).constructor?.name ?? 'object'
}

/** A core graph value -> a driver parameter Neo4j can store as a property. Throws ValueError. */
export function toNeo4j(value: GraphValue | undefined, path: string): unknown {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return value
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX)
        throw new ValueError(`${path}: ${value} does not fit in a 64-bit integer`)
      return value
  }
  if (value instanceof Uint8Array)
    return new Int8Array(value.buffer, value.byteOffset, value.byteLength)
  if (Array.isArray(value)) {
    const items = value.map((item, i) => {
      if (item === null || item === undefined)
        throw new ValueError(`${path}[${i}]: Neo4j lists cannot hold null`)
      if (Array.isArray(item) || item instanceof Uint8Array)
        throw new ValueError(`${path}[${i}]: Neo4j cannot store nested lists`)
      return toNeo4j(item as GraphValue, `${path}[${i}]`)
    })
    const kinds = new Set(items.map(category))
    if (kinds.size > 1)
      throw new ValueError(`${path}: Neo4j lists must hold one type; got ${[...kinds].join(', ')}`)
    return items
  }
  if (isTaggedValue(value)) return fromTagged(value)
  throw new ValueError(
    `${path}: Neo4j stores only primitives, temporal values, points and lists of them; a map or object is not allowed`,
  )
}

/** Convert every property of a node or edge; keys are passed as map keys (never query text). */
export function toNeo4jProperties(
  properties: Record<string, GraphValue>,
  skip: string,
  path: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(properties)) {
    if (key === skip) continue
    if (key === '') throw new ValueError(`${path}: a property name cannot be empty`)
    out[key] = toNeo4j(properties[key], `${path}.${key}`)
  }
  return out
}

/** The text form of a key property value: a node's `id` in graph items. */
export function keyText(
  value: unknown,
): { key: string; type: 'string' | 'integer' | 'float' } | undefined {
  if (typeof value === 'string') return { key: value, type: 'string' }
  if (typeof value === 'bigint') return { key: value.toString(), type: 'integer' }
  if (neo4j.isInt(value)) return { key: value.toString(), type: 'integer' }
  if (typeof value === 'number' && Number.isFinite(value))
    return { key: String(value), type: 'float' }
  return undefined
}

/** A resume context back to the value the query compares with. */
export function keyValue(context: {
  key: string
  type: 'string' | 'integer' | 'float'
}): string | bigint | number {
  if (context.type === 'integer') return BigInt(context.key)
  if (context.type === 'float') return Number(context.key)
  return context.key
}
