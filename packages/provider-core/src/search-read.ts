import { throwIfAborted } from './abort.js'
import type { ReadItem } from './contract.js'
import type { Data, JsonObject } from './data.js'
import { ProviderError } from './errors.js'
import { exactNumberValue, HIT_RAW_JSON } from './search-hits.js'

// ---------------------------------------------------------------------------------------
// Reading an index in a point in time, page by page with search_after (Elasticsearch,
// OpenSearch): both search providers use this, each over its own client (`SearchReadBackend`).
// ---------------------------------------------------------------------------------------

/** A search hit, as a search provider's client gives it. */
export interface SearchReadHit {
  _index: string
  _id: string
  _source?: Record<string, unknown>
  sort?: unknown[]
  /** Its _source fields holding numbers JSON.parse changes, as exact JSON text. */
  [HIT_RAW_JSON]?: Record<string, string>
}

/** The parts of a search response a read uses. */
export interface SearchReadResponse {
  pit_id?: string
  _shards?: { total?: number; failed?: number }
  hits: { hits: SearchReadHit[] }
}

/** The requests a read makes, over one client. */
export interface SearchReadBackend {
  /** The product name for messages: Elasticsearch, OpenSearch. */
  readonly product: string
  openPit(index: string, keepAlive: string, signal: AbortSignal): Promise<string>
  closePit(id: string): Promise<void>
  search(body: Record<string, unknown>, signal: AbortSignal): Promise<SearchReadResponse>
}

/** The source stream settings a read uses (each search provider's stream schema has them). */
export interface SearchReadStream {
  index: string
  query?: Record<string, unknown>
  sortField?: string
  tiebreakField?: string
  pageSize?: number
  keepAlive?: string
  slice?: { id: number; max: number }
  data?: 'document' | 'embedding'
  vectorField?: string
  sourceIncludes?: string[]
}

/**
 * Resume after a document. With a `sortField`: its value (`key`, and `tie` for a
 * `tiebreakField`) and `_id`. Without: the point in time and the hit's sort values.
 */
export interface SearchReadContext {
  id: string
  key?: unknown
  tie?: unknown
  pit?: string
  after?: unknown[]
  end?: true
}

function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', operation: 'read', message })
}

/** A hit as data: the _source as a document, or the vector field as an embedding. */
export function searchHitToData(
  hit: SearchReadHit,
  stream: Pick<SearchReadStream, 'data' | 'vectorField'>,
): Data {
  const source = (hit._source ?? {}) as JsonObject
  if ((stream.data ?? 'document') === 'document') {
    const rawJson = hit[HIT_RAW_JSON]
    return { kind: 'document', id: hit._id, content: source, ...(rawJson ? { rawJson } : {}) }
  }
  const field = stream.vectorField!
  const { [field]: values, ...metadata } = source
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'number')) {
    throw new ProviderError({
      kind: 'data',
      operation: 'read',
      message: `document ${JSON.stringify(hit._id)} in ${hit._index} has no numeric array in vectorField ${JSON.stringify(field)}`,
    })
  }
  return { kind: 'embedding', id: hit._id, values: values as number[], metadata }
}

function isMissingPit(error: unknown): boolean {
  const e = error as { name?: string; meta?: { statusCode?: number; body?: unknown } }
  if (e?.name !== 'ResponseError' || e.meta?.statusCode !== 404) return false
  return /search_context_missing|No search context found|point in time/i.test(
    JSON.stringify(e.meta?.body ?? ''),
  )
}

/**
 * Read an index in a point in time, page by page with search_after.
 *
 * - With `sortField`: sort by it (the point in time adds `_shard_doc` as tiebreaker); an
 *   item's context is its sort value, and resuming opens a new point in time filtered to
 *   values after it, so the context outlives the point in time and sees new documents.
 * - Without: sort by `_shard_doc`; the context holds the point in time and the sort values,
 *   and resuming continues in that point in time while it lives (it is left to expire by
 *   its keep_alive so contexts stay usable; a finished read closes it).
 */
export async function* readSearchIndex(
  backend: SearchReadBackend,
  stream: SearchReadStream,
  after: SearchReadContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<SearchReadContext>> {
  const { sortField, tiebreakField } = stream
  if (tiebreakField !== undefined && sortField === undefined)
    throw configError('stream.tiebreakField needs stream.sortField')
  const data = stream.data ?? 'document'
  if (data === 'embedding' && !stream.vectorField)
    throw configError('stream.vectorField is required when stream.data is embedding')
  const keepAlive = stream.keepAlive ?? '5m'
  const pageSize = stream.pageSize ?? 1000
  const filters: unknown[] = []
  if (stream.query) filters.push(stream.query)
  // A document without the sort field has no place in the order: it is not read.
  if (sortField !== undefined) filters.push({ exists: { field: sortField } })
  if (tiebreakField !== undefined && tiebreakField !== '_id')
    filters.push({ exists: { field: tiebreakField } })
  let searchAfter: unknown[] | undefined
  let pit: string | undefined
  if (after !== undefined) {
    if (sortField !== undefined) {
      if (!('key' in after) || after.key === undefined || after.key === null)
        throw configError(
          'resume context has no sortField value: it came from a read without stream.sortField',
        )
      // A sort value JSON.parse would change is kept as { number: "<text>" }: sent as written.
      const key = exactNumberValue(after.key, 'resume context key')
      if (tiebreakField === undefined) {
        filters.push({ range: { [sortField]: { gt: key } } })
      } else {
        if (after.tie === undefined || after.tie === null)
          throw configError(
            'resume context has no tiebreakField value: it came from a read without stream.tiebreakField',
          )
        // After (key, tie): a greater key, or the same key and a greater tiebreaker.
        filters.push({
          bool: {
            should: [
              { range: { [sortField]: { gt: key } } },
              {
                bool: {
                  filter: [
                    { term: { [sortField]: key } },
                    {
                      range: {
                        [tiebreakField]: { gt: exactNumberValue(after.tie, 'resume context tie') },
                      },
                    },
                  ],
                },
              },
            ],
            minimum_should_match: 1,
          },
        })
      }
    } else {
      if (after.pit === undefined || after.after === undefined)
        throw configError(
          'resume context has no point in time: it came from a read with stream.sortField',
        )
      // The last item of a finished read: its point in time is closed, nothing follows.
      if (after.end === true) return
      pit = after.pit
      searchAfter = after.after
    }
  }
  const sort: unknown[] = sortField
    ? [{ [sortField]: 'asc' }, ...(tiebreakField ? [{ [tiebreakField]: 'asc' }] : [])]
    : [{ _shard_doc: 'asc' }]
  let sourceFilter: string[] | undefined
  if (stream.sourceIncludes) {
    sourceFilter = [...stream.sourceIncludes]
    if (sortField) sourceFilter.push(sortField)
    if (tiebreakField && tiebreakField !== '_id') sourceFilter.push(tiebreakField)
    if (stream.vectorField) sourceFilter.push(stream.vectorField)
  }
  const query =
    filters.length === 0
      ? undefined
      : filters.length === 1
        ? filters[0]
        : { bool: { filter: filters } }
  throwIfAborted(signal)
  if (pit === undefined) pit = await backend.openPit(stream.index, keepAlive, signal)
  let finished = false
  let pending: SearchReadHit | undefined
  const item = (hit: SearchReadHit, end: boolean): ReadItem<SearchReadContext> => {
    const context: SearchReadContext = sortField
      ? {
          id: hit._id,
          key: hit.sort?.[0] ?? null,
          ...(tiebreakField ? { tie: hit.sort?.[1] ?? null } : {}),
        }
      : { id: hit._id, pit: pit!, after: hit.sort ?? [], ...(end ? { end: true } : {}) }
    return { data: searchHitToData(hit, stream), context }
  }
  try {
    for (;;) {
      const body: Record<string, unknown> = {
        pit: { id: pit, keep_alive: keepAlive },
        size: pageSize,
        sort,
        track_total_hits: false,
      }
      if (query !== undefined) body.query = query
      if (searchAfter !== undefined)
        body.search_after = searchAfter.map((value, i) =>
          exactNumberValue(value, `resume context after[${i}]`),
        )
      if (stream.slice) body.slice = { id: stream.slice.id, max: stream.slice.max }
      if (sourceFilter) body._source = sourceFilter
      let response: SearchReadResponse
      try {
        response = await backend.search(body, signal)
      } catch (error) {
        if (after !== undefined && isMissingPit(error) && sortField === undefined) {
          throw configError(
            `the point in time this context was read in has expired (keepAlive ${keepAlive}): a read without stream.sortField resumes only while it lives; declare a unique, growing stream.sortField for contexts that outlive it`,
          )
        }
        throw error
      }
      const failed = response._shards?.failed ?? 0
      if (failed > 0) {
        throw new ProviderError({
          kind: 'transient',
          operation: 'read',
          message: `${backend.product}: ${failed} of ${response._shards?.total ?? '?'} shards failed the search; the page would be incomplete`,
        })
      }
      if (response.pit_id) pit = response.pit_id
      const hits = response.hits.hits
      const last = hits.length < pageSize
      // The last hit of a full page waits for the next page: it may be the end.
      if (pending !== undefined) {
        yield item(pending, hits.length === 0)
        pending = undefined
      }
      for (let i = 0; i < hits.length; i++) {
        throwIfAborted(signal)
        if (i === hits.length - 1 && !last) pending = hits[i]
        else yield item(hits[i]!, last && i === hits.length - 1)
      }
      if (last) {
        finished = true
        return
      }
      searchAfter = hits[hits.length - 1]!.sort
      if (searchAfter === undefined)
        throw new ProviderError({
          kind: 'internal',
          operation: 'read',
          message: `${backend.product} returned hits without sort values`,
        })
    }
  } finally {
    // A sortField read's contexts do not need the point in time, nor do those of a
    // _shard_doc read that went to the end (its last context says so): close it. A read
    // stopped early leaves it to its keep_alive, so its contexts resume in it.
    if (pit !== undefined && (sortField !== undefined || finished)) {
      const closing = backend.closePit(pit)
      if (!signal.aborted) await closing
    }
  }
}
