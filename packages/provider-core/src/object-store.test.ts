import { getMaxListeners, setMaxListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { ProviderError } from './errors.js'
import {
  allowObjectBodyListeners,
  compareObjectKeys,
  laterObjectKey,
  OBJECT_BODY_LISTENERS,
  type ObjectKeyRange,
  ObjectKeyRangeSchema,
  objectChangedError,
  objectKeyRangeProblem,
  objectListing,
  partitionObjectKeys,
} from './object-store.js'
import { checkValue } from './schema.js'

async function* listed(keys: readonly string[]) {
  yield* keys
}

describe('object store keys', () => {
  it('compares keys in UTF-8 byte order, not UTF-16 order', () => {
    // U+FF5E is one UTF-16 unit above U+D83D (the lead of 😀) but its UTF-8 bytes sort first.
    expect('😀' < '～').toBe(true)
    expect(compareObjectKeys('～', '😀')).toBeLessThan(0)
    expect(compareObjectKeys('a', 'a')).toBe(0)
    expect(compareObjectKeys('a/b', 'a0')).toBeLessThan(0)
    expect(compareObjectKeys('ab', 'a')).toBeGreaterThan(0)
  })

  it('takes the later of two keys, a missing one giving way', () => {
    expect(laterObjectKey(undefined, undefined)).toBeUndefined()
    expect(laterObjectKey('a', undefined)).toBe('a')
    expect(laterObjectKey(undefined, 'b')).toBe('b')
    expect(laterObjectKey('a', 'b')).toBe('b')
    expect(laterObjectKey('～', '😀')).toBe('😀')
    expect(laterObjectKey('😀', '～')).toBe('😀')
  })
})

describe('object key range', () => {
  it('accepts string bounds only, and no other field', () => {
    expect(checkValue(ObjectKeyRangeSchema, { after: 'a', through: 'b' })).toEqual([])
    expect(checkValue(ObjectKeyRangeSchema, {})).toEqual([])
    expect(checkValue(ObjectKeyRangeSchema, { after: 1 }).map((i) => i.path)).toEqual(['/after'])
    expect(checkValue(ObjectKeyRangeSchema, { upTo: 'b' })).not.toEqual([])
  })

  it('rejects a range whose lower bound is not below its upper one, naming the field', () => {
    expect(objectKeyRangeProblem(undefined, 's3')).toBeUndefined()
    expect(objectKeyRangeProblem({ after: 'a' }, 's3')).toBeUndefined()
    expect(objectKeyRangeProblem({ after: 'a', through: 'b' }, 's3')).toBeUndefined()
    for (const range of [
      { after: 'b', through: 'a' },
      { after: 'a', through: 'a' },
      { after: '😀', through: '～' },
    ]) {
      const problem = objectKeyRangeProblem(range, 'gcs')
      expect(problem).toBeInstanceOf(ProviderError)
      expect(problem?.kind).toBe('config')
      expect(problem?.message).toContain('gcs')
      expect(problem?.message).toContain('/stream/range/through')
      expect(problem?.issues?.[0]?.path).toBe('/stream/range/through')
    }
  })
})

describe('object listing', () => {
  it('starts after the latest of startAfter, the range lower bound and the resume key', () => {
    expect(objectListing({}, undefined, 's3').startAfter).toBeUndefined()
    expect(
      objectListing({ startAfter: 'b', range: { after: 'a' } }, undefined, 's3').startAfter,
    ).toBe('b')
    expect(objectListing({ startAfter: 'a', range: { after: 'c' } }, 'b', 's3').startAfter).toBe(
      'c',
    )
    expect(objectListing({ range: { after: 'c', through: 'x' } }, 'd', 's3').startAfter).toBe('d')
    expect(objectListing({ range: { after: '～' } }, '😀', 's3').startAfter).toBe('😀')
  })

  it('keeps a listed object by start, suffix, glob (relative to the prefix) and age', () => {
    const listing = objectListing(
      { prefix: 'p/', suffix: '.txt', startAfter: 'p/b', modifiedSince: '2024-01-01T00:00:00Z' },
      undefined,
      's3',
      (relative) => !relative.startsWith('skip'),
    )
    const recent = new Date('2024-06-01T00:00:00Z')
    expect(listing.includes('p/c.txt', recent)).toBe(true)
    expect(listing.includes('p/c.txt')).toBe(true)
    expect(listing.includes('p/b', recent)).toBe(false)
    expect(listing.includes('p/a.txt', recent)).toBe(false)
    expect(listing.includes('p/c.bin', recent)).toBe(false)
    expect(listing.includes('p/skip.txt', recent)).toBe(false)
    expect(listing.includes('p/c.txt', new Date('2023-12-31T23:59:59Z'))).toBe(false)
  })

  it('stops past the range upper bound, in byte order', () => {
    const listing = objectListing({ range: { through: '～' } }, undefined, 'gcs')
    expect(listing.through).toBe('～')
    expect(listing.isPast('～')).toBe(false)
    expect(listing.isPast('a')).toBe(false)
    expect(listing.isPast('😀')).toBe(true)
    expect(objectListing({}, undefined, 'gcs').isPast('\u{10ffff}')).toBe(false)
  })

  it('refuses an empty range', () => {
    expect(() => objectListing({ range: { after: 'b', through: 'a' } }, undefined, 's3')).toThrow(
      /\/stream\/range\/through/,
    )
  })
})

describe('partitioning by listed keys', () => {
  // An object stream as S3 and GCS declare it: a prefix and an optional key range.
  type Stream = { prefix?: string; range?: ObjectKeyRange }
  const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)

  it('cuts at quantiles, the first and last ranges keeping the stream bounds', async () => {
    const plan = await partitionObjectKeys<Stream>({ prefix: 'p/' }, listed(keys), 3)
    expect(plan).toEqual({
      partitions: [
        { prefix: 'p/', range: { through: 'k2' } },
        { prefix: 'p/', range: { after: 'k2', through: 'k5' } },
        { prefix: 'p/', range: { after: 'k5' } },
      ],
    })
    const inner = await partitionObjectKeys(
      { range: { after: 'a', through: 'z' } },
      listed(keys),
      2,
    )
    expect(inner.partitions).toEqual([
      { range: { after: 'a', through: 'k4' } },
      { range: { after: 'k4', through: 'z' } },
    ])
  })

  it('says why when there are fewer partitions than asked, or no object', async () => {
    const few = await partitionObjectKeys({}, listed(['a', 'b']), 4)
    expect(few.partitions).toEqual([{ range: { through: 'a' } }, { range: { after: 'a' } }])
    expect(few.reason).toBe('2 objects: 2 partitions')
    const none = await partitionObjectKeys<Stream>({ prefix: 'x' }, listed([]), 4)
    expect(none.partitions).toEqual([{ prefix: 'x' }])
    expect(none.reason).toMatch(/no object/)
  })

  it('keeps at most maxKeys keys, evenly thinned', async () => {
    const many = Array.from({ length: 100 }, (_, i) => `k${String(i).padStart(3, '0')}`)
    const plan = await partitionObjectKeys({}, listed(many), 4, 8)
    // Thinned to every 16th key (k000, k016, ... k096): 7 keys, cut at their quantiles.
    expect(plan.partitions).toEqual([
      { range: { through: 'k000' } },
      { range: { after: 'k000', through: 'k032' } },
      { range: { after: 'k032', through: 'k064' } },
      { range: { after: 'k064' } },
    ])
  })
})

describe('object bodies', () => {
  it("raises a read signal's listener limit for its bodies, never lowering it", () => {
    const signal = new AbortController().signal
    allowObjectBodyListeners(signal)
    expect(getMaxListeners(signal)).toBe(OBJECT_BODY_LISTENERS)
    const busier = new AbortController().signal
    setMaxListeners(OBJECT_BODY_LISTENERS * 2, busier)
    allowObjectBodyListeners(busier)
    expect(getMaxListeners(busier)).toBe(OBJECT_BODY_LISTENERS * 2)
  })

  it('fails an object changed since it was listed as data, at its key, keeping the cause', () => {
    const cause = new Error('PreconditionFailed')
    const error = objectChangedError('a/"b".txt', cause)
    expect(ProviderError.isInstance(error)).toBe(true)
    expect(error.kind).toBe('data')
    expect(error.cursor).toEqual({ key: 'a/"b".txt' })
    expect(error.message).toBe(
      'object "a/\\"b\\".txt" changed after it was listed; the next run reads its new version',
    )
    expect(error.cause).toBe(cause)
    expect(objectChangedError('k').cause).toBeUndefined()
  })
})
