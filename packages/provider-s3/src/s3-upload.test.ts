import { ProviderError } from '@nvisy/provider-core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_PARTS, PartBufferPool, partSizeFor } from './s3-upload.js'

describe('PartBufferPool', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('hands a buffer given back to the next take of its size, and allocates only when none is free', () => {
    const pool = new PartBufferPool()
    const a = pool.take(1024)
    const b = pool.take(1024)
    expect(a).not.toBe(b)
    expect([pool.inUse, pool.held]).toEqual([2, 2])
    pool.give(a)
    expect(pool.take(1024)).toBe(a)
    const other = pool.take(2048)
    expect(other.byteLength).toBe(2048)
    expect([pool.inUse, pool.held]).toEqual([3, 3])
  })

  it('refuses a buffer given back twice or never taken', () => {
    const pool = new PartBufferPool()
    const buffer = pool.take(16)
    pool.give(buffer)
    expect(() => pool.give(buffer)).toThrow(ProviderError)
    expect(() => pool.give(Buffer.alloc(16))).toThrow('given back twice')
    expect(pool.take(16)).toBe(buffer)
    expect(pool.take(16)).not.toBe(buffer)
  })

  it('lets its buffers go once none has been used for a while, and on clear', () => {
    vi.useFakeTimers()
    const pool = new PartBufferPool()
    const a = pool.take(16)
    const b = pool.take(16)
    pool.give(a)
    vi.advanceTimersByTime(60_000)
    // One still in use: the free one is kept.
    expect(pool.held).toBe(2)
    pool.give(b)
    vi.advanceTimersByTime(5_000)
    expect(pool.take(16)).toBe(b)
    pool.give(b)
    vi.advanceTimersByTime(10_000)
    expect(pool.held).toBe(0)
    pool.give(pool.take(16))
    pool.clear()
    expect(pool.held).toBe(0)
  })
})

describe('partSizeFor', () => {
  it('keeps the part size unless the object would need more than 10,000 parts', () => {
    const part = 8 * 1024 * 1024
    expect(partSizeFor(undefined, part)).toBe(part)
    expect(partSizeFor(part * MAX_PARTS, part)).toBe(part)
    expect(partSizeFor(part * MAX_PARTS + 1, part)).toBe(part + 1)
  })
})
