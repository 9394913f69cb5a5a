import { describe, expect, it } from 'vitest'
import { documentJson } from './data.js'
import { exactNumberFields, jsonNumberParsesExactly } from './json-numbers.js'

describe('jsonNumberParsesExactly', () => {
  it.each([
    ['0', true],
    ['-0', true],
    ['2.50', true],
    ['1E2', true],
    ['0.1', true],
    ['123456789012345', true],
    ['9007199254740992', true], // 2^53 is a double
    ['100000000000000000000', true],
    ['1e308', true],
    ['5e-324', true],
    ['9007199254740993', false],
    ['12345678901234567890123', false],
    ['1e400', false],
    ['-1e400', false],
    ['1e-400', false],
    ['0.10000000000000001', false],
    ['0.1000000000000000055511151231257827', false],
    ['1.0000000000000000001', false],
  ])('%s -> %s', (text, exact) => {
    expect(jsonNumberParsesExactly(text)).toBe(exact)
  })
})

/** A deterministic pseudo-random generator (mulberry32), so a failure names its seed. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A JSON number token: 1..24 digits, maybe a point, maybe an exponent of up to 4 digits. */
function numberToken(next: () => number): string {
  const count = 1 + Math.floor(next() * 24)
  let digits = ''
  for (let i = 0; i < count; i++) digits += String(Math.floor(next() * 10))
  digits = digits.replace(/^0+(?=\d)/, '')
  let token = next() < 0.5 ? '-' : ''
  const point = Math.floor(next() * (digits.length + 2))
  token +=
    point > 0 && point < digits.length ? `${digits.slice(0, point)}.${digits.slice(point)}` : digits
  if (next() < 0.4) {
    const exponent = Math.floor((next() - 0.5) * (next() < 0.5 ? 200 : 20000))
    token += `${next() < 0.5 ? 'e' : 'E'}${exponent >= 0 && next() < 0.5 ? '+' : ''}${exponent}`
  }
  return token
}

describe('exactNumberFields', () => {
  it('finds every number JSON.parse changes, in any place a number goes (20,000 random tokens)', () => {
    const next = random(14)
    let inexact = 0
    for (let i = 0; i < 20_000; i++) {
      const token = numberToken(next)
      const exact = jsonNumberParsesExactly(token)
      if (!exact) inexact++
      for (const [text, field] of [
        [`{"a":${token}}`, token],
        [`{"s":"x", "a": [ 1, ${token} ]}`, `[1,${token}]`],
        [`{"a":{"k":\t${token}},"b":2}`, `{"k":${token}}`],
      ] as const) {
        const fields = exactNumberFields(text)
        if (exact) expect(fields, text).toBeUndefined()
        else expect(fields, text).toEqual({ a: field })
      }
    }
    // The generator makes both kinds in numbers.
    expect(inexact).toBeGreaterThan(2000)
    expect(inexact).toBeLessThan(18_000)
  })

  it('gives the fields documentJson needs to write the text back exactly', () => {
    const text =
      '{"id":"a","n":12345678901234567890123,"x":1e400,"d":0.1000000000000000055511151231257827,"ok":2.5,"o":{"k":[9007199254740993,"s"]},"t":"é\\u0000"}'
    const fields = exactNumberFields(text)
    expect(fields).toEqual({
      n: '12345678901234567890123',
      x: '1e400',
      d: '0.1000000000000000055511151231257827',
      o: '{"k":[9007199254740993,"s"]}',
    })
    expect(documentJson(JSON.parse(text), fields)).toBe(text)
  })

  it('leaves text alone when its long digits are inside strings, and a field named __proto__ is a field', () => {
    expect(exactNumberFields('{"s":"12345678901234567890","u":"550e8400-e29b"}')).toBeUndefined()
    // A string that looks like a number after a comma costs an exact parse, and still finds none.
    expect(exactNumberFields('{"s":"a,12345678901234567890,1e400"}')).toBeUndefined()
    const fields = exactNumberFields('{"__proto__":1e400}')
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype)
    expect(Object.keys(fields!)).toEqual(['__proto__'])
    expect(fields!.__proto__).toBe('1e400')
  })

  it('reads a repeated key as JSON.parse does: the last value wins, at every depth', () => {
    expect(exactNumberFields('{"a":1e400,"a":2}')).toBeUndefined()
    expect(exactNumberFields('{"a":2,"b":0,"a":1e400}')).toEqual({ a: '1e400' })
    expect(exactNumberFields('{"o":{"x":1e400,"y":1,"x":12345678901234567890}}')).toEqual({
      o: '{"x":12345678901234567890,"y":1}',
    })
    const text = '{"a":2,"b":0,"a":1e400}'
    expect(documentJson(JSON.parse(text), exactNumberFields(text))).toBe('{"a":1e400,"b":0}')
  })

  it('answers undefined for text that is not an object, and throws on invalid text it parses', () => {
    expect(exactNumberFields('[1e400]')).toBeUndefined()
    expect(exactNumberFields('1e400')).toBeUndefined()
    expect(() => exactNumberFields('{"a":1e400')).toThrow(SyntaxError)
  })
})
