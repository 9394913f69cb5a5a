import { Readable } from 'node:stream'
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import {
  type BlobData,
  type Data,
  itemDataError,
  iterateBytes,
  toProviderError,
  type WriteResult,
  writeEachConcurrently,
} from '@nvisy/provider-core'
import type { S3Copier } from './s3-copy.js'
import { classifyS3Error } from './s3-errors.js'
import { encodeMetadata, metadataKeyProblem } from './s3-metadata.js'
import type { S3SinkStream } from './s3-schemas.js'

const MAX_KEY_BYTES = 1024

function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'the object key is empty'
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)
    return `the object key is longer than ${MAX_KEY_BYTES} bytes`
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'the object key contains control characters'
  return undefined
}

/**
 * Upload a batch of blobs, `concurrency` objects at a time, each streamed through a
 * multipart upload (a single PutObject when it fits in one part). Put-by-key is
 * idempotent: a replayed batch overwrites each object with the same bytes. In create-only
 * mode `If-None-Match: *` makes an existing key a data failure for that blob alone.
 * Any other failure (auth, throttling, network) fails the batch so the runtime retries it.
 * With `serverSideCopy` (set by the runtime only when source and sink are one account and
 * place), a blob that carries an `origin` is copied inside the store by `copier` instead,
 * and streamed when the store will not copy it.
 */
export async function writeS3(
  client: S3Client,
  bucket: string,
  stream: S3SinkStream,
  batch: readonly Data[],
  options: { signal: AbortSignal; serverSideCopy?: boolean | undefined },
  copier?: S3Copier,
): Promise<WriteResult> {
  const { signal } = options
  const copies = options.serverSideCopy === true && stream.serverSideCopy ? copier : undefined
  const exists = 'the object already exists and the sink is create-only'
  return writeEachConcurrently(
    batch,
    { concurrency: stream.concurrency, signal },
    async (item, _index, stop) => {
      const blob = item as BlobData
      const key = `${stream.prefix}${blob.key}`
      const what = `blob ${JSON.stringify(key)}`
      const problem =
        keyProblem(key) ??
        Object.keys(blob.metadata ?? {})
          .map(metadataKeyProblem)
          .find(Boolean)
      if (problem) return itemDataError(what, problem)
      if (copies && blob.origin) {
        const outcome = await copies.copy(blob.origin, key, stream, stop)
        if (outcome === 'copied') return undefined
        if (outcome === 'exists') return itemDataError(what, exists)
      }
      try {
        const multipart =
          !(blob.body instanceof Uint8Array) &&
          (blob.size === undefined || blob.size > stream.partSizeBytes)
        if (stream.createOnly && multipart) {
          // Some S3-compatible servers ignore If-None-Match on CompleteMultipartUpload; check first.
          const found = await client
            .send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: stop })
            .then(
              () => true,
              (error: unknown) => {
                if (
                  (error as { $metadata?: { httpStatusCode?: number } }).$metadata
                    ?.httpStatusCode === 404
                )
                  return false
                throw error
              },
            )
          if (found) return itemDataError(what, exists)
        }
        const body =
          blob.body instanceof Uint8Array
            ? blob.body
            : Readable.from(iterateBytes(blob.body), { objectMode: false })
        const upload = new Upload({
          client,
          params: {
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentType: blob.contentType,
            Metadata: encodeMetadata(blob.metadata),
            IfNoneMatch: stream.createOnly ? '*' : undefined,
          },
          partSize: stream.partSizeBytes,
          queueSize: stream.partConcurrency,
          leavePartsOnError: false,
        })
        const abortUpload = () => {
          upload.abort().catch(() => {})
        }
        stop.addEventListener('abort', abortUpload, { once: true })
        try {
          await upload.done()
        } finally {
          stop.removeEventListener('abort', abortUpload)
        }
        return undefined
      } catch (raw) {
        const error = toProviderError(raw, { classify: classifyS3Error, stream: key })
        if (error.kind !== 'data') throw error
        return itemDataError(
          what,
          stream.createOnly && error.code === 'PreconditionFailed' ? exists : error.message,
          raw,
        )
      }
    },
  )
}
