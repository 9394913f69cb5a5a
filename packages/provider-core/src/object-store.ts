// Pieces shared by the object-store sources (S3, GCS): both list a bucket in UTF-8 byte order
// of the key, filter the listing the same way, resume after a key, read a key range (a
// partition) and split a stream into key ranges from the listing.
import { getMaxListeners, setMaxListeners } from 'node:events'
import { type Static, Type } from '@sinclair/typebox'
import { ProviderError } from './errors.js'
import type { PartitionPlan } from './index.js'
import { partitionPlan, quantileBounds, splitAtBounds } from './key-ranges.js'

/**
 * Compare two object keys in UTF-8 byte order, the order S3 and GCS list in. (JavaScript's
 * `<` compares UTF-16 code units, which differs for characters above U+FFFF.)
 */
export function compareObjectKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** The later of two keys in UTF-8 byte order; a missing one gives way to the other. */
export function laterObjectKey(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return compareObjectKeys(a, b) >= 0 ? a : b
}

/** A stream's key range, as `partition` returns it (the same shape as fs's blob range). */
export const ObjectKeyRangeSchema = Type.Object(
  {
    after: Type.Optional(
      Type.String({ description: 'Only keys that sort (UTF-8 byte order) after this one' }),
    ),
    through: Type.Optional(
      Type.String({ description: 'Only keys that sort at or before this one' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A key range, as `partition` returns it; a missing bound is open',
  },
)
export type ObjectKeyRange = Static<typeof ObjectKeyRangeSchema>

/**
 * A `config` error for a key range whose lower bound is not below its upper one (such a range
 * holds no key: it is a mistake, not an empty partition), naming the field; undefined if valid.
 */
export function objectKeyRangeProblem(
  range: ObjectKeyRange | undefined,
  provider: string,
): ProviderError | undefined {
  if (range?.after === undefined || range.through === undefined) return undefined
  if (compareObjectKeys(range.after, range.through) < 0) return undefined
  const path = '/stream/range/through'
  const rule = 'range.after < range.through'
  const message = `must sort after range.after (UTF-8 byte order): ${JSON.stringify(range.through)} is not after ${JSON.stringify(range.after)}`
  return new ProviderError({
    kind: 'config',
    message: `invalid ${provider} stream settings: ${path} ${message} (${rule})`,
    issues: [{ path, rule, message }],
  })
}

/** The stream settings an object listing honours (S3's and GCS's source streams). */
export interface ObjectListingStream {
  prefix?: string | undefined
  suffix?: string | undefined
  startAfter?: string | undefined
  modifiedSince?: string | undefined
  range?: ObjectKeyRange | undefined
}

/** How to list one stream: where to start, where to stop, and which listed objects it keeps. */
export interface ObjectListing {
  /** List the keys after this one (exclusive): the latest of `startAfter`, the range's lower bound and the resume key. */
  startAfter: string | undefined
  /** The range's upper bound (inclusive), if any. */
  through: string | undefined
  /** Whether a listed key lies past `through`: it and every later key are outside the stream. */
  isPast(key: string): boolean
  /**
   * Whether a listed object (under the prefix, after `startAfter`) belongs to the stream:
   * after `startAfter`, by suffix, by `matches` (given the key relative to the prefix) and by
   * `modifiedSince`. The upper bound is `isPast`'s job.
   */
  includes(key: string, lastModified?: Date): boolean
}

/**
 * The listing of `stream` resumed after `after` (a context's key). Throws a `config` error
 * when the stream's key range is empty by construction (see `objectKeyRangeProblem`).
 */
export function objectListing(
  stream: ObjectListingStream,
  after: string | undefined,
  provider: string,
  matches?: (relativeKey: string) => boolean,
): ObjectListing {
  const problem = objectKeyRangeProblem(stream.range, provider)
  if (problem) throw problem
  const prefix = stream.prefix ?? ''
  const since = stream.modifiedSince ? Date.parse(stream.modifiedSince) : undefined
  const startAfter = laterObjectKey(laterObjectKey(stream.startAfter, stream.range?.after), after)
  const through = stream.range?.through
  return {
    startAfter,
    through,
    isPast: (key) => through !== undefined && compareObjectKeys(key, through) > 0,
    includes(key, lastModified) {
      if (startAfter !== undefined && compareObjectKeys(key, startAfter) <= 0) return false
      if (stream.suffix && !key.endsWith(stream.suffix)) return false
      if (matches && !matches(key.slice(prefix.length))) return false
      if (since !== undefined && lastModified && lastModified.getTime() < since) return false
      return true
    },
  }
}

/** The most keys held while planning partitions: beyond it every other one is dropped. */
export const MAX_PARTITION_KEYS = 100_000

/**
 * Split an object stream into at most `count` key ranges holding about as many objects, from
 * its `keys` in listing order (bodies are never read): at most `maxKeys` of them kept evenly
 * spread, cut at their quantiles. The first range keeps the stream's lower bound and the last
 * its upper one (none: open-ended), so an object added while the partitions are read belongs
 * to exactly one of them.
 */
export async function partitionObjectKeys<TStream extends { range?: ObjectKeyRange | undefined }>(
  stream: TStream,
  keys: AsyncIterable<string>,
  count: number,
  maxKeys = MAX_PARTITION_KEYS,
): Promise<PartitionPlan<TStream>> {
  let kept: string[] = []
  let objects = 0
  let stride = 1
  for await (const key of keys) {
    if (objects++ % stride !== 0) continue
    kept.push(key)
    if (kept.length >= maxKeys) {
      kept = kept.filter((_, i) => i % 2 === 0)
      stride *= 2
    }
  }
  if (kept.length === 0)
    return {
      partitions: [stream],
      reason: 'no object matches the stream: it is read as one partition',
    }
  return partitionPlan(
    splitAtBounds(
      stream,
      quantileBounds(kept, count, (a, b) => a === b),
    ),
    count,
    `${objects} object${objects === 1 ? '' : 's'}`,
  )
}

/** How many blob bodies being read at once may listen on one read's signal. */
export const OBJECT_BODY_LISTENERS = 1000

/**
 * Let a read's blob bodies each listen on its signal: a sink reading many bodies at once is
 * expected, not a leak, so the signal's listener limit is raised to `OBJECT_BODY_LISTENERS`
 * (never lowered).
 */
export function allowObjectBodyListeners(signal: AbortSignal): void {
  if (getMaxListeners(signal) < OBJECT_BODY_LISTENERS)
    setMaxListeners(OBJECT_BODY_LISTENERS, signal)
}

/**
 * The `data` error for an object whose listed version is gone when its body is fetched (the
 * store refused the pinned version): that item fails and the next run reads the new version.
 */
export function objectChangedError(key: string, cause?: unknown): ProviderError {
  return new ProviderError({
    kind: 'data',
    message: `object ${JSON.stringify(key)} changed after it was listed; the next run reads its new version`,
    cursor: { key },
    cause,
  })
}
