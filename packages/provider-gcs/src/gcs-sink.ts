import { setMaxListeners } from 'node:events'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Bucket } from '@google-cloud/storage'
import {
  type BlobData,
  type Data,
  iterateBytes,
  mapConcurrent,
  ProviderError,
  raceAbort,
  readBytes,
  toProviderError,
  type WriteFailure,
  type WriteResult,
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

function dataFailure(index: number, name: string, message: string, cause?: unknown): WriteFailure {
  return {
    index,
    error: new ProviderError({
      kind: 'data',
      message: `blob ${JSON.stringify(name)}: ${message}`,
      cause,
    }),
  }
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
  const failed: WriteFailure[] = []
  let written = 0
  const stop = new AbortController()
  // One listener per object in flight, on top of the caller's: not a leak.
  setMaxListeners(stream.concurrency + 10, stop.signal)
  const onAbort = () => stop.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await mapConcurrent(batch, stream.concurrency, async (item, index) => {
      if (stop.signal.aborted) return
      const blob = item as BlobData
      const name = `${stream.prefix}${blob.key}`
      const problem = nameProblem(name)
      if (problem) {
        failed.push(dataFailure(index, name, problem))
        return
      }
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
          await pipeline(source, file.createWriteStream(options), { signal: stop.signal })
        } else {
          // A small body is buffered (at most resumableThresholdBytes), so the client can
          // resend it when a kept-alive connection turns out to be closed.
          const body =
            blob.body instanceof Uint8Array
              ? blob.body
              : await readBytes(blob.body, stream.resumableThresholdBytes)
          await raceAbort(
            file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), options),
            stop.signal,
          )
        }
        written++
      } catch (raw) {
        if (stop.signal.aborted) throw stop.signal.reason
        if (stream.createOnly && gcsStatus(raw) === 412) {
          failed.push(
            dataFailure(index, name, 'the object already exists and the sink is create-only', raw),
          )
          return
        }
        const error = toProviderError(raw, { classify: classifyGcsError, stream: name })
        if (error.kind === 'data') {
          failed.push(dataFailure(index, name, error.message, raw))
          return
        }
        stop.abort(error)
        throw error
      }
    })
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  failed.sort((a, b) => a.index - b.index)
  return { written, failed }
}
