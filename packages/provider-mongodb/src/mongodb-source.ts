import {
  type PartitionPlan,
  ProviderError,
  partitionPlan,
  quantileBounds,
  type ReadItem,
  raceAbort,
  splitAtBounds,
  throwIfAborted,
} from '@nvisy/provider-core'
import type { Db, Document, FindCursor } from 'mongodb'
import {
  afterValue,
  fromExtendedJson,
  resumeFilter,
  toCanonical,
  toDocumentData,
  upToValue,
} from './mongodb-documents.js'
import type { MongoContext, MongoStream } from './mongodb-schemas.js'

export const DEFAULT_BATCH_SIZE = 1000

/** Raw BSON types on the way out: Int32 stays Int32, Long stays Long, a regex keeps its flags. */
export const RAW_BSON = { promoteValues: false, promoteLongs: false, bsonRegExp: true } as const

function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', message })
}

/** The projection the read sends: the user's, keeping _id and the cursor field. */
export function readProjection(stream: MongoStream): Document | undefined {
  const projection = stream.projection
  if (!projection || Object.keys(projection).length === 0) return undefined
  const entries = Object.entries(projection).map(
    ([path, on]) => [path, on === true || on === 1] as const,
  )
  const including = entries.filter(([path, on]) => on && path !== '_id').length > 0
  for (const [path, on] of entries) {
    if (!on && (path === '_id' || path === stream.cursorField)) {
      throw configError(
        `stream.projection must not exclude ${path}: reads resume by ${stream.cursorField ? `${stream.cursorField} and _id` : '_id'}`,
      )
    }
    if (including && !on && path !== '_id') {
      throw configError('stream.projection cannot mix inclusion and exclusion')
    }
  }
  const result: Document = {}
  for (const [path, on] of entries) result[path] = on ? 1 : 0
  if (including && stream.cursorField) result[stream.cursorField] = 1
  return result
}

function parseFilter(stream: MongoStream): Document {
  if (!stream.filter) return {}
  try {
    return fromExtendedJson<Document>(stream.filter)
  } catch (error) {
    throw configError(`stream.filter is not valid Extended JSON: ${(error as Error).message}`)
  }
}

function contextOf(doc: Document, cursorField: string | undefined): MongoContext {
  if (cursorField === undefined) return { _id: toCanonical(doc._id) }
  return { _id: toCanonical(doc._id), cursor: toCanonical(valueAt(doc, cursorField) ?? null) }
}

function valueAt(doc: Document, path: string): unknown {
  let current: unknown = doc
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Document)[part]
  }
  return current
}

/** The conditions of a stream's `_id` range (a partition). */
function rangeFilters(stream: MongoStream): Document[] {
  const range = stream.range
  if (!range) return []
  const filters: Document[] = []
  for (const bound of ['after', 'through'] as const) {
    if (range[bound] === undefined) continue
    let value: unknown
    try {
      value = fromExtendedJson(range[bound])
    } catch (error) {
      throw new ProviderError({
        kind: 'config',
        message: `/stream/range/${bound} is not valid Extended JSON: ${(error as Error).message}`,
        issues: [
          {
            path: `/stream/range/${bound}`,
            rule: 'extended json',
            message: 'not valid Extended JSON',
          },
        ],
      })
    }
    filters.push(bound === 'after' ? afterValue('_id', value) : upToValue('_id', value))
  }
  return filters
}

/** Up to this many documents (counted) every `_id` is read: the boundaries are exact. */
export const EXACT_DOCUMENTS = 50_000
/** About this many sampled `_id`s place the boundaries of up to 1024 partitions well. */
export const SAMPLE_DOCUMENTS = 30_000

/**
 * Split a collection read into at most `count` ranges of `_id` holding about as many
 * documents: quantiles of the `_id`s in the server's sort order (BSON order, type brackets
 * included), from every `_id` matching the stream's filter and range when there are at most
 * `EXACT_DOCUMENTS`, else from a `$sample`. The first range keeps the stream's lower bound and
 * the last its upper one (none: open-ended), so a document inserted during the run belongs to
 * exactly one partition. A stream ordered by `cursorField` is not split (its order is not
 * the `_id`'s).
 */
export async function partitionCollection(
  db: Db,
  stream: MongoStream,
  count: number,
  signal: AbortSignal,
  limits: { exact: number; sample: number } = {
    exact: EXACT_DOCUMENTS,
    sample: SAMPLE_DOCUMENTS,
  },
): Promise<PartitionPlan<MongoStream>> {
  if (stream.cursorField !== undefined)
    return {
      partitions: [stream],
      reason: `partitions split by _id; a stream read in cursorField order (${stream.cursorField}) is read as one`,
    }
  const filters = [parseFilter(stream), ...rangeFilters(stream)].filter(
    (f) => Object.keys(f).length > 0,
  )
  const filter = filters.length === 0 ? {} : filters.length === 1 ? filters[0]! : { $and: filters }
  const collection = db.collection(stream.collection)
  const total = await raceAbort(collection.countDocuments(filter), signal)
  let ids: unknown[]
  if (total <= limits.exact) {
    const docs = await raceAbort(
      collection.find(filter, { sort: { _id: 1 }, projection: { _id: 1 }, ...RAW_BSON }).toArray(),
      signal,
    )
    ids = docs.map((doc) => doc._id)
  } else {
    const docs = await raceAbort(
      collection
        .aggregate(
          [
            { $match: filter },
            { $sample: { size: limits.sample } },
            { $project: { _id: 1 } },
            { $sort: { _id: 1 } },
          ],
          { allowDiskUse: true, ...RAW_BSON },
        )
        .toArray(),
      signal,
    )
    ids = docs.map((doc) => doc._id)
  }
  if (ids.length === 0)
    return {
      partitions: [stream],
      reason: 'the stream has no documents: it is read as one partition',
    }
  // Boundaries compared in their canonical (Extended JSON) form, as contexts hold them.
  const bounds = quantileBounds(ids.map(toCanonical), count)
  const what = total <= limits.exact ? `${total} documents` : `a sample of ${ids.length} documents`
  return partitionPlan(splitAtBounds(stream, bounds), count, what)
}

/**
 * Read a collection in `_id` order (or `[cursorField, _id]`), resuming after the context's
 * position. One server-side cursor per read; documents arrive `batchSize` at a time.
 */
export async function* readCollection(
  db: Db,
  stream: MongoStream,
  after: MongoContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<MongoContext>> {
  const { cursorField } = stream
  const projection = readProjection(stream)
  const filters = [parseFilter(stream), ...rangeFilters(stream)]
  if (after !== undefined) {
    let id: unknown
    let cursorValue: unknown
    try {
      id = fromExtendedJson(after._id)
      cursorValue = cursorField === undefined ? undefined : fromExtendedJson(after.cursor ?? null)
    } catch (error) {
      throw configError(`resume context is not valid Extended JSON: ${(error as Error).message}`)
    }
    if (cursorField !== undefined && after.cursor === undefined) {
      throw configError(
        'resume context has no cursor value, but the stream has a cursorField: it came from another stream',
      )
    }
    filters.push(resumeFilter(id, cursorField, cursorValue))
  }
  const nonEmpty = filters.filter((f) => Object.keys(f).length > 0)
  const filter =
    nonEmpty.length === 0 ? {} : nonEmpty.length === 1 ? nonEmpty[0]! : { $and: nonEmpty }
  const sort: Document = cursorField === undefined ? { _id: 1 } : { [cursorField]: 1, _id: 1 }
  throwIfAborted(signal)
  const cursor: FindCursor<Document> = db.collection(stream.collection).find(filter, {
    sort,
    batchSize: stream.batchSize ?? DEFAULT_BATCH_SIZE,
    ...(projection ? { projection } : {}),
    ...RAW_BSON,
  })
  try {
    for (;;) {
      const doc = await raceAbort(cursor.next(), signal)
      if (doc === null) return
      throwIfAborted(signal)
      yield { data: toDocumentData(doc), context: contextOf(doc, cursorField) }
      // The rest of the batch the driver already holds, without a promise per document.
      for (const buffered of cursor.readBufferedDocuments()) {
        throwIfAborted(signal)
        yield { data: toDocumentData(buffered), context: contextOf(buffered, cursorField) }
      }
    }
  } finally {
    // After an abort a getMore may still be in flight: close without waiting for it.
    const closing = cursor.close().catch(() => {})
    if (!signal.aborted) await closing
  }
}
