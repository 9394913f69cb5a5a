import { describe, expect, it } from 'vitest'
import { dedupeKeyPrefix, hashTag } from './redis-sink.js'
import { entryToMessage, escapeGlob } from './redis-source.js'

describe('dedupe keys', () => {
  it('finds the hash tag as Redis does', () => {
    expect(hashTag('orders')).toBeUndefined()
    expect(hashTag('{orders}:x')).toBe('orders')
    expect(hashTag('a{b}c{d}')).toBe('b')
    expect(hashTag('a{}b{c}')).toBeUndefined()
    expect(hashTag('a{b')).toBeUndefined()
  })

  it('is <stream>:nvisy-dedupe: standalone', () => {
    expect(dedupeKeyPrefix('orders', false)).toBe('orders:nvisy-dedupe:')
    expect(dedupeKeyPrefix('a}b', false)).toBe('a}b:nvisy-dedupe:')
  })

  it('shares the stream slot in a cluster', () => {
    expect(dedupeKeyPrefix('{orders}:events', true)).toBe('{orders}:events:nvisy-dedupe:')
    expect(dedupeKeyPrefix('orders', true)).toBe('{orders}:nvisy-dedupe:')
    expect(hashTag(`${dedupeKeyPrefix('orders', true)}id`)).toBe('orders')
    expect(hashTag(`${dedupeKeyPrefix('a{b', true)}id`)).toBe('a{b')
    expect(() => dedupeKeyPrefix('a}b', true)).toThrow(/hash tag/)
  })
})

describe('escapeGlob', () => {
  it('escapes every glob character', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f')
    expect(escapeGlob('plain:prefix:')).toBe('plain:prefix:')
  })
})

describe('entryToMessage', () => {
  it('maps the fields this provider writes', () => {
    const message = entryToMessage([
      Buffer.from('1700000000123-4'),
      [
        Buffer.from('nvisy-id'),
        Buffer.from('m-1'),
        Buffer.from('payload'),
        Buffer.from([0, 255]),
        Buffer.from('nvisy-subject'),
        Buffer.from('orders.created'),
        Buffer.from('h:trace'),
        Buffer.from('abc'),
      ],
    ])
    expect(message).toEqual({
      kind: 'message',
      id: 'm-1',
      payload: Buffer.from([0, 255]),
      subject: 'orders.created',
      headers: { trace: 'abc' },
      timestamp: new Date(1700000000123),
    })
  })

  it('keeps foreign fields as headers and uses the entry id', () => {
    const message = entryToMessage([Buffer.from('5-0'), [Buffer.from('event'), Buffer.from('x')]])
    expect(message.id).toBe('5-0')
    expect(message.payload.byteLength).toBe(0)
    expect(message.headers).toEqual({ event: 'x' })
  })
})
