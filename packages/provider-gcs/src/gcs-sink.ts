import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Bucket } from '@google-cloud/storage'
import {
  type BlobData,
  type Data,
  itemDataError,
  iterateBytes,
  raceAbort,
  readBytes,
  toProviderError,
  type WriteResult,
  writeEachConcurrently,
} from '@nvisy/provider-core'
import { classifyGcsError, gcsStatus } from './gcs-errors.js'
import type { GcsSinkStream } from './gcs-schemas.js'

const MAX_NAME_BYTES = 1024

function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the object name is empty'
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
    return `the object name is longer than ${MAX_NAME_BYTES} bytes`
  if (/[\r\n]/.test(name)) return 'the object name contains a line break'
  if (name === '.' || name === '..' || name.startsWith('.well-known/acme-challenge/'))
    return 'the object name is reserved'
  return undefined
}

/**
 * Upload a batch of blobs, `concurrency` at a time, each streamed: a simple upload for a
 * small body of known size, a resumable upload (one streamed PUT) otherwise. Writing by
 * name is idempotent; `createOnly` adds `ifGenerationMatch: 0`, whose 412 fails that blob alone.
 */
export async function writeGcs(
  bucket: Bucket,
  stream: GcsSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
): Promise<WriteResult> {
  return writeEachConcurrently(
    batch,
    { concurrency: stream.concurrency, signal },
    async (item, _index, stop) => {
      const blob = item as BlobData
      const name = `${stream.prefix}${blob.key}`
      const what = `blob ${JSON.stringify(name)}`
      const problem = nameProblem(name)
      if (problem) return itemDataError(what, problem)
      const size = blob.body instanceof Uint8Array ? blob.body.byteLength : blob.size
      const resumable = size === undefined || size > stream.resumableThresholdBytes
      const file = bucket.file(name)
      const options = {
        resumable,
        contentType: blob.contentType,
        metadata: blob.metadata ? { metadata: blob.metadata } : undefined,
        preconditionOpts: stream.createOnly ? { ifGenerationMatch: 0 } : undefined,
        validation: 'crc32c' as const,
      }
      try {
        if (resumable) {
          // One streamed request; the resumable protocol recovers from a dropped connection.
          const source =
            blob.body instanceof Uint8Array
              ? Readable.from([blob.body])
              : Readable.from(iterateBytes(blob.body))
          await pipeline(source, file.createWriteStream(options), { signal: stop })
        } else {
          // A small body is buffered (at most resumableThresholdBytes), so the client can
          // resend it when a kept-alive connection turns out to be closed.
          const body =
            blob.body instanceof Uint8Array
              ? blob.body
              : await readBytes(blob.body, stream.resumableThresholdBytes)
          await raceAbort(
            file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), options),
            stop,
          )
        }
        return undefined
      } catch (raw) {
        if (stop.aborted) throw stop.reason
        if (stream.createOnly && gcsStatus(raw) === 412) {
          return itemDataError(what, 'the object already exists and the sink is create-only', raw)
        }
        const error = toProviderError(raw, { classify: classifyGcsError, stream: name })
        if (error.kind !== 'data') throw error
        return itemDataError(what, error.message, raw)
      }
    },
  )
}
