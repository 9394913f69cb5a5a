// Server-side copies: a blob read by an S3 source is copied inside the store (CopyObject up to
// the cutoff, UploadPartCopy parts above it) when the runtime says the source and the sink are
// one account and place (`WriteOptions.serverSideCopy`). No body byte goes through the
// runtime. The copy keeps the object's content type and metadata as the store holds them
// (MetadataDirective COPY, as rclone and `aws s3 cp` do), so it needs no HEAD per object.
// Whatever the store will not copy is streamed instead, exactly as without copies.
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  type BlobOrigin,
  isAbortError,
  type Logger,
  mapConcurrent,
  toProviderError,
} from '@nvisy/provider-core'
import { classifyS3Error } from './s3-errors.js'
import type { S3Params, S3SinkStream, S3Stream } from './s3-schemas.js'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
} from './s3-sdk.js'
import { partSizeFor } from './s3-upload.js'

/** The largest object one CopyObject copies (S3's limit); larger ones are copied in parts. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3

function endpointKey(endpoint: string | undefined): string {
  if (endpoint === undefined) return ''
  const url = new URL(endpoint)
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
}

/**
 * The provider's `serverSideCopy` hook: two S3 connections are one place when they reach the
 * same endpoint (AWS when both have none; URLs compared normalized), in the same region, with
 * the same addressing style. Buckets may differ. The sink stream's `serverSideCopy: false`
 * turns copies off. (The runtime has already checked that the credentials are equal.)
 */
export function sameS3Place(
  source: { params: S3Params; stream: S3Stream },
  sink: { params: S3Params; stream: S3SinkStream },
): boolean {
  if (!sink.stream.serverSideCopy) return false
  const a = source.params
  const b = sink.params
  const pathStyle = (p: S3Params) => p.forcePathStyle ?? p.endpoint !== undefined
  try {
    return (
      a.region === b.region &&
      endpointKey(a.endpoint) === endpointKey(b.endpoint) &&
      pathStyle(a) === pathStyle(b)
    )
  } catch {
    return false
  }
}

/** `x-amz-copy-source`: the bucket and the URL-encoded key (slashes kept), and the version. */
export function copySource(origin: BlobOrigin): string {
  const key = encodeURIComponent(origin.key).replace(/%2F/g, '/')
  const version = origin.versionId ? `?versionId=${encodeURIComponent(origin.versionId)}` : ''
  return `${origin.bucket}/${key}${version}`
}

/** The MD5 hex of a single-part ETag, or undefined for any other form (multipart, opaque). */
export function plainMd5(etag: string | undefined): string | undefined {
  const bare = etag?.replace(/^W\//, '').replace(/"/g, '').toLowerCase()
  return bare && /^[0-9a-f]{32}$/.test(bare) ? bare : undefined
}

/** The ETag S3 gives a multipart object made of these parts: MD5 of the parts' MD5s, `-N`. */
function multipartEtag(partEtags: readonly (string | undefined)[]): string | undefined {
  const md5s = partEtags.map(plainMd5)
  if (md5s.some((m) => m === undefined)) return undefined
  const hash = createHash('md5')
  for (const md5 of md5s) hash.update(Buffer.from(md5!, 'hex'))
  return `${hash.digest('hex')}-${md5s.length}`
}

function bareEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/"/g, '').toLowerCase()
}

interface EncryptionInfo {
  ServerSideEncryption?: string | undefined
  SSECustomerAlgorithm?: string | undefined
  SSEKMSKeyId?: string | undefined
}

/** SSE-KMS and SSE-C objects have ETags that are not MD5s of their bytes. */
function opaqueEtags(response: EncryptionInfo): boolean {
  return (
    Boolean(response.SSECustomerAlgorithm) ||
    Boolean(response.SSEKMSKeyId) ||
    (response.ServerSideEncryption ?? '').startsWith('aws:kms')
  )
}

/** Thrown inside a copy when the result does not check out against the source. */
class CopyMismatch extends Error {}

export type CopyOutcome =
  /** The object was copied server-side and checked. */
  | 'copied'
  /** Create-only: the key exists already (a `data` failure for this blob, as when streaming). */
  | 'exists'
  /** Not copied: stream the body instead. */
  | 'stream'

/**
 * Server-side copies for one sink connection. Remembers whether the server implements
 * copies at all (after a `NotImplemented`, every later blob streams without asking) and logs
 * the first fallback once, at info.
 */
export class S3Copier {
  readonly #client: S3Client
  readonly #bucket: string
  readonly #logger: Logger
  #unsupported = false
  #loggedFallback = false

  constructor(client: S3Client, bucket: string, logger: Logger) {
    this.#client = client
    this.#bucket = bucket
    this.#logger = logger
  }

  /**
   * Copy the object at `origin` to `key` server-side. Resolves `'stream'` when the store
   * will not copy it (refused, not implemented, a result that does not match the source, any
   * failure a stream might not share): the caller streams the body, which never was opened.
   * Throws only aborts and throttling (the batch is retried, as a stream's would be).
   */
  async copy(
    origin: BlobOrigin,
    key: string,
    stream: S3SinkStream,
    signal: AbortSignal,
  ): Promise<CopyOutcome> {
    if (this.#unsupported) return 'stream'
    const size = origin.size
    try {
      if (stream.createOnly && (await this.#exists(key, signal))) return 'exists'
      if (size !== undefined && size > Math.min(stream.copyCutoffBytes, MAX_SINGLE_COPY_BYTES))
        await this.#copyParts(origin, size, key, stream, signal)
      else await this.#copyWhole(origin, key, stream, signal)
      return 'copied'
    } catch (raw) {
      if (signal.aborted || isAbortError(raw)) throw raw
      if (raw instanceof CopyMismatch) {
        this.#logger.warn(
          { key, reason: raw.message },
          'server-side copy did not match its source; removed it and streaming the object instead',
        )
        await this.#client
          .send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }), {
            abortSignal: signal,
          })
          .catch(() => {})
        return 'stream'
      }
      const error = toProviderError(raw, { classify: classifyS3Error, stream: key })
      // Throttling is the server asking everyone to slow down: a stream would be throttled too.
      if (error.kind === 'rate_limited') throw error
      const status = (raw as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (error.code === 'NotImplemented' || status === 501) this.#unsupported = true
      if (!this.#loggedFallback) {
        this.#loggedFallback = true
        this.#logger.info(
          { key, code: error.code, status, kind: error.kind },
          `server-side copy refused (${error.code ?? `HTTP ${status ?? '?'}`}): streaming this object instead${this.#unsupported ? ', and every later one (the server does not implement copies)' : ''}; later fallbacks are logged at debug`,
        )
      } else this.#logger.debug({ key, code: error.code, status }, 'server-side copy refused')
      return 'stream'
    }
  }

  async #exists(key: string, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), {
        abortSignal: signal,
      })
      return true
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false
      throw error
    }
  }

  async #copyWhole(
    origin: BlobOrigin,
    key: string,
    stream: S3SinkStream,
    signal: AbortSignal,
  ): Promise<void> {
    const response = await this.#client.send(
      new CopyObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        CopySource: copySource(origin),
        // Pinned to the listed version, like the source's own reads (If-Match).
        CopySourceIfMatch: origin.etag,
        // Content type, user metadata and the other headers as the source holds them.
        MetadataDirective: 'COPY',
        IfNoneMatch: stream.createOnly ? '*' : undefined,
      }),
      { abortSignal: signal },
    )
    // A single-part object's ETag is the MD5 of its bytes: the copy's must be the source's.
    // (This also catches a source rewritten after listing on servers that ignore
    // x-amz-copy-source-if-match.)
    const want = plainMd5(origin.etag)
    const got = plainMd5(response.CopyObjectResult?.ETag)
    if (want && got && want !== got && !opaqueEtags(response))
      throw new CopyMismatch(`the copy's ETag is ${got}, the listed source's ${want}`)
  }

  async #copyParts(
    origin: BlobOrigin,
    size: number,
    key: string,
    stream: S3SinkStream,
    signal: AbortSignal,
  ): Promise<void> {
    // The streamed upload's part size, grown when the object would need more than 10,000 parts.
    const partSize = partSizeFor(size, stream.partSizeBytes)
    const count = Math.ceil(size / partSize)
    // A multipart upload takes its headers at creation: the source's, as CopyObject's COPY
    // directive would keep them (one HEAD per large object, pinned to the listed version).
    const source = await this.#client.send(
      new HeadObjectCommand({ Bucket: origin.bucket, Key: origin.key, IfMatch: origin.etag }),
      { abortSignal: signal },
    )
    const created = await this.#client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.#bucket,
        Key: key,
        ContentType: source.ContentType,
        Metadata: source.Metadata,
        ContentEncoding: source.ContentEncoding,
        ContentDisposition: source.ContentDisposition,
        ContentLanguage: source.ContentLanguage,
        CacheControl: source.CacheControl,
      }),
      { abortSignal: signal },
    )
    const uploadId = created.UploadId!
    // Parts in flight stop at the first failure.
    const stop = new AbortController()
    setMaxListeners(stream.partConcurrency + 10, stop.signal)
    const onAbort = () => stop.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    let parts: { PartNumber: number; ETag: string | undefined }[]
    try {
      const from = copySource(origin)
      const numbers = Array.from({ length: count }, (_, i) => i + 1)
      parts = await mapConcurrent(numbers, stream.partConcurrency, async (partNumber) => {
        const start = (partNumber - 1) * partSize
        const end = Math.min(size, start + partSize) - 1
        try {
          const response = await this.#client.send(
            new UploadPartCopyCommand({
              Bucket: this.#bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: partNumber,
              CopySource: from,
              CopySourceIfMatch: origin.etag,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
            { abortSignal: stop.signal },
          )
          return { PartNumber: partNumber, ETag: response.CopyPartResult?.ETag }
        } catch (error) {
          stop.abort(error)
          throw error
        }
      })
      await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfNoneMatch: stream.createOnly ? '*' : undefined,
        }),
        { abortSignal: signal },
      )
    } catch (error) {
      await this.#client
        .send(
          new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }),
        )
        .catch(() => {})
      throw error
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    // The assembled object: the listed size, and the ETag its parts make.
    const head = await this.#client.send(
      new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
      {
        abortSignal: signal,
      },
    )
    if (head.ContentLength !== size)
      throw new CopyMismatch(`the copy holds ${head.ContentLength} bytes, the source ${size}`)
    const want = multipartEtag(parts.map((part) => part.ETag))
    const got = bareEtag(head.ETag)
    if (want && got && want !== got && !opaqueEtags(head))
      throw new CopyMismatch(`the copy's ETag is ${got}, its copied parts make ${want}`)
  }
}
