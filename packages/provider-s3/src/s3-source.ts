import type { _Object, S3Client } from '@aws-sdk/client-s3'
import {
  allowObjectBodyListeners,
  type BlobData,
  type ByteSource,
  objectChangedError,
  objectListing,
  type PartitionPlan,
  partitionObjectKeys,
  REPLAYABLE_BODY,
  type ReadItem,
  type ReplayableBody,
  toProviderError,
} from '@nvisy/provider-core'
import picomatch from 'picomatch'
import { classifyS3Error } from './s3-errors.js'
import { decodeMetadata } from './s3-metadata.js'
import type { S3Context, S3Stream } from './s3-schemas.js'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from './s3-sdk.js'

/**
 * A listed object's body: replayable (an `S3ObjectBody`) only when the listing gave its ETag,
 * so that every read is pinned to the listed version; without one (a store that lists no
 * ETags) a second read could give other bytes, so the body is an ordinary stream, read once
 * (the runtime buffers a small one for a retry, as for any other source).
 */
export function objectBody(
  client: S3Client,
  bucket: string,
  key: string,
  etag: string | undefined,
  signal: AbortSignal,
): ByteSource {
  const body = new S3ObjectBody(client, bucket, key, etag, signal)
  if (etag) return body
  return { [Symbol.asyncIterator]: () => body[Symbol.asyncIterator]() }
}

/** HeadObject requests kept in flight ahead of the consumer, to hide their latency. */
const HEAD_PREFETCH = 8

function toError(error: unknown, key: string) {
  return toProviderError(error, { classify: classifyS3Error, cursor: { key } })
}

/**
 * A listed object's body, fetched only when a consumer iterates it, so a page of listed
 * objects never holds open connections or buffers. Each iteration is one GetObject pinned to
 * the listed version by `IfMatch`, so the body can be read again and gives the same bytes or
 * fails: it is marked replayable, and the runtime passes it to the sink without a copy in
 * memory (a retry reads it again); the sink streams it into a PutObject, and reads it again
 * only when the store refuses the digest (see s3-sink).
 */
export class S3ObjectBody implements ReplayableBody {
  readonly [REPLAYABLE_BODY] = true as const
  readonly #client: S3Client
  readonly #bucket: string
  readonly #key: string
  readonly #etag: string | undefined
  readonly #signal: AbortSignal

  constructor(
    client: S3Client,
    bucket: string,
    key: string,
    etag: string | undefined,
    signal: AbortSignal,
  ) {
    this.#client = client
    this.#bucket = bucket
    this.#key = key
    this.#etag = etag
    this.#signal = signal
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    const key = this.#key
    let body: AsyncIterable<Uint8Array>
    try {
      const response = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: key, IfMatch: this.#etag }),
        { abortSignal: this.#signal },
      )
      body = response.Body as unknown as AsyncIterable<Uint8Array>
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412)
        throw objectChangedError(key, error)
      throw toError(error, key)
    }
    try {
      for await (const chunk of body) yield chunk
    } catch (error) {
      throw toError(error, key)
    }
  }
}

type ListedObject = _Object & { Key: string }

/**
 * The stream's objects page by page, in key order (ListObjectsV2 is always in UTF-8 binary
 * key order), filtered by the stream's settings. The listing starts after the latest of
 * `startAfter`, the key range's lower bound and the resume key (StartAfter), and ends after
 * the range's upper bound.
 */
async function* listS3Pages(
  client: S3Client,
  bucket: string,
  stream: S3Stream,
  after: S3Context | undefined,
  signal: AbortSignal,
): AsyncGenerator<ListedObject[]> {
  const prefix = stream.prefix ?? ''
  const matches = stream.glob ? picomatch(stream.glob, { dot: true }) : undefined
  const listing = objectListing(stream, after?.key, 's3', matches)
  let token: string | undefined
  let first = true
  do {
    const page = await client
      .send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix || undefined,
          StartAfter: first ? listing.startAfter : undefined,
          ContinuationToken: token,
          MaxKeys: stream.pageSize,
        }),
        { abortSignal: signal },
      )
      .catch((error: unknown) => {
        throw toProviderError(error, { classify: classifyS3Error, cursor: after })
      })
    first = false
    const objects: ListedObject[] = []
    let past = false
    for (const object of page.Contents ?? []) {
      const key = object.Key
      if (key === undefined) continue
      // Keys come in order: the first one past the range's upper bound ends the listing.
      if (listing.isPast(key)) {
        past = true
        break
      }
      if (listing.includes(key, object.LastModified)) objects.push(object as ListedObject)
    }
    if (objects.length > 0) yield objects
    if (past) return
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
}

/**
 * List a bucket in key order and yield each object as a blob whose context is its key. A
 * resumed read lists from StartAfter = the context's key (or the range's lower bound, if
 * later), so it yields exactly the keys after it; a key range stops after its upper bound.
 */
export async function* readS3(
  client: S3Client,
  bucket: string,
  stream: S3Stream,
  after: S3Context | undefined,
  signal: AbortSignal,
): AsyncGenerator<ReadItem<S3Context>> {
  allowObjectBodyListeners(signal)
  for await (const objects of listS3Pages(client, bucket, stream, after, signal)) {
    // Prefetch HeadObject a few objects ahead; each item still waits for its own answer.
    const heads: Promise<{
      contentType?: string | undefined
      metadata?: Record<string, string> | undefined
    }>[] = []
    const head = (object: ListedObject) =>
      client
        .send(new HeadObjectCommand({ Bucket: bucket, Key: object.Key, IfMatch: object.ETag }), {
          abortSignal: signal,
        })
        .then((response) => ({
          contentType: response.ContentType,
          metadata: decodeMetadata(response.Metadata),
        }))
    for (let i = 0; i < objects.length; i++) {
      if (stream.metadata) {
        for (let j = heads.length; j < Math.min(objects.length, i + HEAD_PREFETCH); j++) {
          const promise = head(objects[j]!)
          promise.catch(() => {})
          heads.push(promise)
        }
      }
      const object = objects[i]!
      const info = stream.metadata
        ? await heads[i]!.catch((error: unknown) => Promise.reject(toError(error, object.Key)))
        : {}
      const data: BlobData = {
        kind: 'blob',
        key: object.Key,
        body: objectBody(client, bucket, object.Key, object.ETag, signal),
        size: object.Size,
        lastModified: object.LastModified,
        contentType: info.contentType,
        metadata: info.metadata,
        // For server-side copies: a sink on the same endpoint with the same credentials copies
        // from here (pinned to the listed ETag) and never opens the body.
        origin: { bucket, key: object.Key, etag: object.ETag, size: object.Size },
      }
      yield { data, context: { key: object.Key } }
    }
  }
}

/**
 * Split a stream into at most `count` key ranges holding about as many objects, from its
 * listing (keys only: no HeadObject, no body); see `partitionObjectKeys`.
 */
export async function partitionS3(
  client: S3Client,
  bucket: string,
  stream: S3Stream,
  count: number,
  signal: AbortSignal,
): Promise<PartitionPlan<S3Stream>> {
  async function* keys() {
    for await (const objects of listS3Pages(client, bucket, stream, undefined, signal))
      for (const object of objects) yield object.Key
  }
  return partitionObjectKeys(stream, keys(), count)
}
