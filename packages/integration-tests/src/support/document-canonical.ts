// Comparing document and message destinations (JSONL, MongoDB, JetStream, Redis) with the
// source database: each destination is read back as TEXT with the system's own client, parsed
// here WITHOUT loss (numbers kept as their digits, duplicate keys and key order kept), and
// brought to the same canonical text per kind as the source database computes in SQL
// (canonical.ts). Nothing goes through the runtime's or a provider's own decoding.
import type { Kind } from './canonical.js'
import { NULL_MARK } from './canonical.js'

export type Json =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; v: string }
  | { t: 'str'; v: string }
  | { t: 'arr'; v: Json[] }
  | { t: 'obj'; v: [string, Json][] }

/** A JSON parser that keeps numbers as their text and every key in order, duplicates included. */
export function parseLossless(text: string): Json {
  let i = 0
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++
  }
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i} in ${text.slice(Math.max(0, i - 20), i + 20)}`)
  }
  const string = (): string => {
    if (text[i] !== '"') fail('expected a string')
    let end = i + 1
    while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1
    const value = JSON.parse(text.slice(i, end + 1)) as string
    i = end + 1
    return value
  }
  const value = (): Json => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const entries: [string, Json][] = []
      ws()
      if (text[i] === '}') {
        i++
        return { t: 'obj', v: entries }
      }
      for (;;) {
        ws()
        const key = string()
        ws()
        if (text[i++] !== ':') fail('expected :')
        entries.push([key, value()])
        ws()
        const next = text[i++]
        if (next === '}') return { t: 'obj', v: entries }
        if (next !== ',') fail('expected , or }')
      }
    }
    if (c === '[') {
      i++
      const items: Json[] = []
      ws()
      if (text[i] === ']') {
        i++
        return { t: 'arr', v: items }
      }
      for (;;) {
        items.push(value())
        ws()
        const next = text[i++]
        if (next === ']') return { t: 'arr', v: items }
        if (next !== ',') fail('expected , or ]')
      }
    }
    if (c === '"') return { t: 'str', v: string() }
    if (text.startsWith('true', i)) {
      i += 4
      return { t: 'bool', v: true }
    }
    if (text.startsWith('false', i)) {
      i += 5
      return { t: 'bool', v: false }
    }
    if (text.startsWith('null', i)) {
      i += 4
      return { t: 'null' }
    }
    const match = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i))
    if (!match) return fail('unexpected character')
    i += match[0].length
    return { t: 'num', v: match[0] }
  }
  const result = value()
  ws()
  if (i !== text.length) fail('trailing text')
  return result
}

/** Whether a JSON value holds an object that repeats a key (at any depth). */
export function repeatsKey(node: Json): boolean {
  if (node.t === 'arr') return node.v.some(repeatsKey)
  if (node.t !== 'obj') return false
  const keys = new Set(node.v.map(([k]) => k))
  return keys.size !== node.v.length || node.v.some(([, v]) => repeatsKey(v))
}

/** An exact decimal number's canonical text: `[-]digits` scaled, `digitsEexponent` with no trailing zeros. */
export function canonicalNumber(text: string): string {
  const match = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim())
  if (!match) return `not a number: ${text}`
  const [, sign, whole = '', fraction = '', exponent = '0'] = match
  let digits = (whole + fraction).replace(/^0+/, '')
  let scale = BigInt(exponent) - BigInt(fraction.length)
  if (digits === '') return '0'
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1)
    scale++
  }
  return `${sign}${digits}e${scale}`
}

/** Canonical JSON: exact numbers, keys in their order with duplicates, no whitespace. */
export function canonicalJson(node: Json): string {
  switch (node.t) {
    case 'null':
      return 'null'
    case 'bool':
      return String(node.v)
    case 'num':
      return canonicalNumber(node.v)
    case 'str':
      return JSON.stringify(node.v)
    case 'arr':
      return `[${node.v.map(canonicalJson).join(',')}]`
    case 'obj':
      return `{${node.v.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
}

const utf8Hex = (text: string) => Buffer.from(text, 'utf8').toString('hex')
const view = new DataView(new ArrayBuffer(8))

function doubleBits(value: number): string {
  view.setFloat64(0, value)
  return view.getBigUint64(0).toString(16).toUpperCase().padStart(16, '0')
}

/** Microseconds of a signed `[-]H:MM:SS[.ffffff]` duration. */
function durationMicros(text: string): string {
  const match = /^(-?)(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(text)
  if (!match) return `not a duration: ${text}`
  const [, sign, h, m, s, f = ''] = match
  const micros =
    ((BigInt(h!) * 60n + BigInt(m!)) * 60n + BigInt(s!)) * 1_000_000n + BigInt(f.padEnd(6, '0'))
  return `${sign && micros !== 0n ? '-' : ''}${micros}`
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` of an ISO-ish text; an offset is applied (UTC). */
function wallClock(text: string, instant: boolean): string {
  const match = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$/.exec(
    text,
  )
  if (!match) return `not a timestamp: ${text}`
  const [, date, time, fraction = '', zone] = match
  const micros = fraction.padEnd(6, '0').slice(0, 6)
  if (instant && zone && zone !== 'Z' && !/^[+-]00:?00$/.test(zone)) {
    const ms = Date.parse(
      `${date}T${time}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`,
    )
    return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}.${micros}`
  }
  return `${date} ${time}.${micros}`
}

/** The canonical text of a document field holding a value of `kind` (`floatBits` 32 or 64). */
export function documentCanonical(kind: Kind, node: Json | undefined, floatBits = 64): string {
  if (node === undefined) return 'MISSING'
  if (node.t === 'null') return NULL_MARK
  const scalar = node.t === 'num' || node.t === 'str' ? node.v : undefined
  if (typeof kind === 'object') {
    if (node.t === 'bool') return (node.v ? '1' : '0').padStart(kind.bits, '0')
    if (node.t === 'str' && /^[01]+$/.test(node.v) && node.v.length === kind.bits) return node.v
    if (scalar !== undefined && /^\d+$/.test(scalar))
      return BigInt(scalar).toString(2).padStart(kind.bits, '0')
    return `unexpected bits ${JSON.stringify(node)}`
  }
  switch (kind) {
    case 'int':
      return scalar !== undefined && /^-?\d+$/.test(scalar)
        ? BigInt(scalar).toString()
        : `not an exact integer: ${JSON.stringify(node)}`
    case 'float': {
      if (scalar === undefined) return `unexpected float ${JSON.stringify(node)}`
      const value = Number(scalar)
      return doubleBits(floatBits === 32 ? Math.fround(value) : value)
    }
    case 'decimal':
      return scalar !== undefined
        ? canonicalNumber(scalar)
        : `unexpected decimal ${JSON.stringify(node)}`
    case 'duration':
      return node.t === 'str'
        ? durationMicros(node.v)
        : `unexpected duration ${JSON.stringify(node)}`
    case 'datetime':
    case 'timestamptz':
      return node.t === 'str'
        ? wallClock(node.v, kind === 'timestamptz')
        : `unexpected timestamp ${JSON.stringify(node)}`
    case 'binary':
      return node.t === 'str'
        ? Buffer.from(node.v, 'base64').toString('hex')
        : `unexpected binary ${JSON.stringify(node)}`
    case 'text':
    case 'enum':
      return node.t === 'str' ? utf8Hex(node.v) : `unexpected text ${JSON.stringify(node)}`
    case 'set':
      if (node.t === 'str') return utf8Hex(node.v)
      if (node.t === 'arr')
        return utf8Hex(node.v.map((v) => (v.t === 'str' ? v.v : JSON.stringify(v))).join(','))
      return `unexpected set ${JSON.stringify(node)}`
    case 'json':
      // The value itself (parsed), or its text kept as a string: the same canonical JSON.
      if (node.t === 'str') {
        try {
          return canonicalJson(parseLossless(node.v))
        } catch {
          return canonicalJson(node)
        }
      }
      return canonicalJson(node)
  }
}

/** The source database's canonical text (canonical.ts) brought to the document comparison form. */
export function expectedCanonical(kind: Kind, sqlCanonical: string): string {
  if (sqlCanonical === NULL_MARK) return NULL_MARK
  if (kind === 'decimal') return canonicalNumber(sqlCanonical)
  if (kind === 'json')
    return canonicalJson(parseLossless(Buffer.from(sqlCanonical, 'hex').toString('utf8')))
  return sqlCanonical
}
