import { getMaxListeners, setMaxListeners } from 'node:events'
import type { Bucket, File } from '@google-cloud/storage'
import { type BlobData, ProviderError, type ReadItem, toProviderError } from '@nvisy/provider-core'
import picomatch from 'picomatch'
import { classifyGcsError, gcsStatus } from './gcs-errors.js'
import type { GcsContext, GcsStream } from './gcs-schemas.js'

const BODY_LISTENERS = 1000

function maxKey(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a > b ? a : b
}

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
        if (gcsStatus(error) === 404 && generation !== undefined) {
          throw new ProviderError({
            kind: 'data',
            message: `object ${JSON.stringify(name)} changed after it was listed; the next run reads its new version`,
            cursor: { key: name },
          })
        }
        throw toProviderError(error, { classify: classifyGcsError, cursor: { key: name } })
      } finally {
        signal.removeEventListener('abort', onAbort)
        stream.destroy()
      }
    },
  }
}

/**
 * List a bucket page by page in name order (GCS lists in lexicographic UTF-8 order) and
 * yield each object as a blob whose context is its name. A resumed read lists from
 * `startOffset` = that name and drops the name itself, so it yields exactly what follows.
 */
export async function* readGcs(
  bucket: Bucket,
  stream: GcsStream,
  after: GcsContext | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<GcsContext>> {
  // Each blob body being read listens on the read's signal; a sink reading many bodies at
  // once is expected, not a leak.
  if (getMaxListeners(signal) < BODY_LISTENERS) setMaxListeners(BODY_LISTENERS, signal)
  const prefix = stream.prefix ?? ''
  const matches = stream.glob ? picomatch(stream.glob, { dot: true }) : undefined
  const since = stream.modifiedSince ? Date.parse(stream.modifiedSince) : undefined
  const startAfter = maxKey(stream.startAfter, after?.key)
  let pageToken: string | undefined
  do {
    if (signal.aborted) throw signal.reason
    let files: File[]
    let next: { pageToken?: string } | null
    try {
      ;[files, next] = (await bucket.getFiles({
        prefix: prefix || undefined,
        startOffset: startAfter,
        maxResults: stream.pageSize,
        autoPaginate: false,
        pageToken,
      })) as unknown as [File[], { pageToken?: string } | null]
    } catch (error) {
      throw toProviderError(error, { classify: classifyGcsError, cursor: after })
    }
    for (const file of files) {
      const name = file.name
      if (startAfter !== undefined && name <= startAfter) continue
      if (stream.suffix && !name.endsWith(stream.suffix)) continue
      if (matches && !matches(name.slice(prefix.length))) continue
      const meta = file.metadata
      const updated = meta.updated ? new Date(meta.updated) : undefined
      if (since !== undefined && updated && updated.getTime() < since) continue
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
    pageToken = next?.pageToken
  } while (pageToken)
}
