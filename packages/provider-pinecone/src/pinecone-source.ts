import {
  type EmbeddingData,
  type JsonObject,
  type ReadItem,
  raceAbort,
  throwIfAborted,
} from '@nvisy/provider-core'
import type { Index } from '@pinecone-database/pinecone'
import { compareIds } from './pinecone-records.js'
import type { PineconeContext, PineconeStream } from './pinecone-schemas.js'

const DEFAULT_PAGE_SIZE = 100

/**
 * List ids page by page in byte order (optionally under a prefix) and fetch each page's
 * vectors. Each item's context holds the token of the page it came from and its id: a
 * resume lists that page again and skips ids up to and including the id, so it is exact
 * even when the page changed in between.
 */
export async function* readVectors(
  index: Index,
  stream: PineconeStream,
  after: PineconeContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<PineconeContext>> {
  const pageSize = stream.pageSize ?? DEFAULT_PAGE_SIZE
  const asFloat32 = stream.values === 'float32'
  let token: string | null = after?.token ?? null
  const lastId = after?.lastId
  while (true) {
    throwIfAborted(signal)
    const page = await raceAbort(
      index.listPaginated({
        limit: pageSize,
        ...(stream.prefix ? { prefix: stream.prefix } : {}),
        ...(token ? { paginationToken: token } : {}),
      }),
      signal,
    )
    let ids = (page.vectors ?? [])
      .map((item) => item.id)
      .filter((id): id is string => typeof id === 'string')
    if (lastId !== undefined) ids = ids.filter((id) => compareIds(id, lastId) > 0)
    if (ids.length > 0) {
      const fetched = await raceAbort(index.fetch({ ids }), signal)
      for (const id of ids) {
        // Deleted between list and fetch: nothing to yield.
        const record = fetched.records[id]
        if (!record) continue
        const data: EmbeddingData = {
          kind: 'embedding',
          id,
          values: asFloat32 ? Float32Array.from(record.values ?? []) : (record.values ?? []),
        }
        const sparse = record.sparseValues
        if (sparse && sparse.indices.length > 0)
          data.sparse = { indices: sparse.indices, values: sparse.values }
        if (record.metadata && Object.keys(record.metadata).length > 0) {
          data.metadata = record.metadata as JsonObject
        }
        throwIfAborted(signal)
        yield { data, context: { token, lastId: id } }
      }
    }
    const next = page.pagination?.next
    if (!next) return
    token = next
  }
}
