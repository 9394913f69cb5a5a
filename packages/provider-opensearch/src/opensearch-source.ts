import {
  type Data,
  type ReadItem,
  readSearchIndex,
  type StreamInfo,
  type StreamSchema,
  searchHitToData,
  searchIndexSchema,
  searchStreamsOf,
} from '@nvisy/provider-core'
import type { SearchBackend, SearchHit } from './opensearch-client.js'
import type { OpenSearchContext, OpenSearchStream } from './opensearch-schemas.js'

/** A hit as data: the _source as a document, or the vector field as an embedding. */
export function hitToData(hit: SearchHit, stream: OpenSearchStream): Data {
  return searchHitToData(hit, stream)
}

/**
 * Read an index in a point in time, page by page with search_after (`readSearchIndex`:
 * with `sortField` contexts outlive the point in time; without, they resume in it).
 */
export function readIndex(
  backend: SearchBackend,
  stream: OpenSearchStream,
  after: OpenSearchContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<OpenSearchContext>> {
  return readSearchIndex(backend, stream, after, signal)
}

/** The data streams and indices a connection can read, with their mapped fields. */
export async function discoverStreams(
  backend: SearchBackend,
  signal: AbortSignal,
): Promise<StreamInfo[]> {
  const mappings = await backend.getMappings('*', signal)
  const dataStreams = (await backend.dataStreams(signal)).map((s) => s.name)
  return searchStreamsOf(mappings, dataStreams, 'knn_vector')
}

/** The columns of a stream's index (the union over every index it matches). */
export async function describeIndex(
  backend: SearchBackend,
  stream: OpenSearchStream,
  signal: AbortSignal,
): Promise<StreamSchema> {
  return searchIndexSchema(
    await backend.getMappings(stream.index, signal),
    stream.index,
    'opensearch',
  )
}
