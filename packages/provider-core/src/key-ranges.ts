// Splitting a stream into key ranges, for sources that implement `partition` by their
// ordering key: boundaries at equal shares of a sorted list of keys (every key, or a sample),
// then one range from each boundary to the next, the first and last open-ended or bounded by
// the stream's own range.
import type { PartitionPlan } from './contract.js'

/** A key range: keys after `after` up to and including `through`; a missing side is open. */
export interface KeyRange<TKey> {
  after?: TKey | undefined
  through?: TKey | undefined
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * The last key of each of `count` equal shares of `sortedKeys`, as the boundaries between
 * `count` ranges: at most `count - 1` of them, fewer when there are fewer keys, and a boundary
 * equal to the one before it (by `same`; JSON equality by default) is kept once, so a key
 * that fills several shares gives one range.
 */
export function quantileBounds<TKey>(
  sortedKeys: readonly TKey[],
  count: number,
  same: (a: TKey, b: TKey) => boolean = sameJson,
): TKey[] {
  const parts = Math.min(count, sortedKeys.length)
  const bounds: TKey[] = []
  for (let j = 1; j < parts; j++) {
    const bound = sortedKeys[Math.floor((j * sortedKeys.length) / parts) - 1]!
    const previous = bounds[bounds.length - 1]
    if (bounds.length > 0 && same(previous as TKey, bound)) continue
    bounds.push(bound)
  }
  return bounds
}

/**
 * The stream split at `bounds`: (outer.after, b0], (b0, b1], ..., (bn, outer.through], where
 * `outer` is the stream's own `range` (a partition of a partition stays inside it). Each is the
 * stream with that range; a range open on both sides is the stream without one.
 */
export function splitAtBounds<TKey, TStream extends { range?: KeyRange<TKey> | undefined }>(
  stream: TStream,
  bounds: readonly TKey[],
): TStream[] {
  const { range: outer = {}, ...rest } = stream
  return Array.from({ length: bounds.length + 1 }, (_, j) => {
    const range: KeyRange<TKey> = {}
    const after = j === 0 ? outer.after : bounds[j - 1]
    const through = j === bounds.length ? outer.through : bounds[j]
    if (after !== undefined) range.after = after
    if (through !== undefined) range.through = through
    return (Object.keys(range).length === 0 ? { ...rest } : { ...rest, range }) as TStream
  })
}

/** A plan of `partitions`, saying why when there are fewer than `count` (`what` describes the stream). */
export function partitionPlan<TStream>(
  partitions: TStream[],
  count: number,
  what: string,
): PartitionPlan<TStream> {
  return partitions.length < count
    ? {
        partitions,
        reason: `${what}: ${partitions.length} partition${partitions.length === 1 ? '' : 's'}`,
      }
    : { partitions }
}
