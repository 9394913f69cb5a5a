import type { Bucket, File } from '@google-cloud/storage'
import {
  allowObjectBodyListeners,
  type BlobData,
  objectChangedError,
  objectListing,
  type PartitionPlan,
  partitionObjectKeys,
  type ReadItem,
  toProviderError,
} from '@nvisy/provider-core'
import picomatch from 'picomatch'
import { classifyGcsError, gcsStatus } from './gcs-errors.js'
import type { GcsContext, GcsStream } from './gcs-schemas.js'

/** The object body, opened only when the consumer iterates it, pinned to the listed generation. */
function lazyBody(
  bucket: Bucket,
  name: string,
  generation: string | number | undefined,
  signal: AbortSignal,
): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const file = bucket.file(
        name,
        generation === undefined ? {} : { generation: Number(generation) },
      )
      const stream = file.createReadStream({ validation: 'crc32c' })
      const onAbort = () => stream.destroy(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        for await (const chunk of stream) yield chunk as Uint8Array
      } catch (error) {
        if (gcsStatus(error) === 404 && generation !== undefined) throw objectChangedError(name)
        throw toProviderError(error, { classify: classifyGcsError, cursor: { key: name } })
      } finally {
        signal.removeEventListener('abort', onAbort)
        stream.destroy()
      }
    },
  }
}

/**
 * The stream's objects page by page, in name order (GCS lists in lexicographic UTF-8 order),
 * filtered by the stream's settings. The listing starts at `startOffset` = the latest of
 * `startAfter`, the key range's lower bound and the resume name, dropping that name itself,
 * and ends after the range's upper bound.
 */
async function* listGcsPages(
  bucket: Bucket,
  stream: GcsStream,
  after: GcsContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<File[]> {
  const prefix = stream.prefix ?? ''
  const matches = stream.glob ? picomatch(stream.glob, { dot: true }) : undefined
  const listing = objectListing(stream, after?.key, 'gcs', matches)
  let pageToken: string | undefined
  do {
    if (signal.aborted) throw signal.reason
    let files: File[]
    let next: { pageToken?: string } | null
    try {
      ;[files, next] = (await bucket.getFiles({
        prefix: prefix || undefined,
        startOffset: listing.startAfter,
        maxResults: stream.pageSize,
        autoPaginate: false,
        pageToken,
      })) as unknown as [File[], { pageToken?: string } | null]
    } catch (error) {
      throw toProviderError(error, { classify: classifyGcsError, cursor: after })
    }
    const kept: File[] = []
    let past = false
    for (const file of files) {
      // Names come in order: the first one past the range's upper bound ends the listing.
      if (listing.isPast(file.name)) {
        past = true
        break
      }
      const updated = file.metadata.updated ? new Date(file.metadata.updated) : undefined
      if (listing.includes(file.name, updated)) kept.push(file)
    }
    if (kept.length > 0) yield kept
    if (past) return
    pageToken = next?.pageToken
  } while (pageToken)
}

/**
 * List a bucket in name order and yield each object as a blob whose context is its name. A
 * resumed read lists from `startOffset` = that name (or the range's lower bound, if later)
 * and drops the name itself, so it yields exactly what follows; a key range stops after its
 * upper bound.
 */
export async function* readGcs(
  bucket: Bucket,
  stream: GcsStream,
  after: GcsContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<GcsContext>> {
  allowObjectBodyListeners(signal)
  for await (const files of listGcsPages(bucket, stream, after, signal)) {
    for (const file of files) {
      const name = file.name
      const meta = file.metadata
      const updated = meta.updated ? new Date(meta.updated) : undefined
      const userMetadata = meta.metadata
        ? Object.fromEntries(
            Object.entries(meta.metadata)
              .filter(([, v]) => v !== null && v !== undefined)
              .map(([k, v]) => [k, String(v)]),
          )
        : undefined
      const data: BlobData = {
        kind: 'blob',
        key: name,
        body: lazyBody(bucket, name, meta.generation, signal),
        size: meta.size === undefined ? undefined : Number(meta.size),
        contentType: meta.contentType,
        metadata: userMetadata,
        lastModified: updated,
      }
      yield { data, context: { key: name } }
    }
  }
}

/**
 * Split a stream into at most `count` name ranges holding about as many objects, from its
 * listing (names only: no body is opened); see `partitionObjectKeys`.
 */
export async function partitionGcs(
  bucket: Bucket,
  stream: GcsStream,
  count: number,
  signal: AbortSignal,
): Promise<PartitionPlan<GcsStream>> {
  async function* names() {
    for await (const files of listGcsPages(bucket, stream, undefined, signal))
      for (const file of files) yield file.name
  }
  return partitionObjectKeys(stream, names(), count)
}
