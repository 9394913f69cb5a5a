// The sink's uploads of a body larger than one part, without @aws-sdk/lib-storage: a streamed
// body is copied, as it arrives, into part buffers a connection reuses (lib-storage joined the
// chunks into a new buffer per part: an 8 MiB allocation, its page faults and its external
// memory per part, and socket chunks kept until the part was full, long enough to be promoted
// and freed only by full GCs), and `partConcurrency` parts go up at once.
//
// A part buffer goes back to its pool only once the UploadPart request that reads it has
// settled, its retries included: the SDK's HTTP handler (@smithy/node-http-handler 4.14, read
// for this) destroys the request before it rejects on an abort or a timeout, and a part is
// answered with success only once the store has read all of it. (A store that answers with
// an error before reading the whole body may leave bytes queued on that connection: they
// belong to a request that has failed already, and its signed SHA-256 would refuse them.)
// An upload that fails or is aborted waits for every part in flight to settle before it
// aborts the multipart upload and rejects: no part lands after the AbortMultipartUpload, and
// no buffer is reused while a request may still read it.
//
// Integrity: each part is signed with the SHA-256 of its bytes (SigV4's payload hash, which the
// SDK computes for a byte body and the store checks), as lib-storage's parts were. Content-MD5
// would check as much but costs more here: measured on this machine (x86-64 with SHA-NI,
// Node 20, OpenSSL 3), SHA-256 hashes 1.5 GiB per CPU second and MD5 0.66 GiB, so an 8 MiB
// part costs 5 ms of SHA-256 against 12 ms of MD5 (and the payload hash is needed anyway
// unless the payload is sent unsigned).

import { setMaxListeners } from 'node:events'
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3'
import { abortReason, ProviderError, raceAbort } from '@nvisy/provider-core'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from './s3-sdk.js'

/** S3's limit on parts per multipart upload. */
export const MAX_PARTS = 10_000

/** How long a pool keeps its buffers once no upload uses any of them. */
const IDLE_RELEASE_MS = 10_000

/**
 * The part size for an object of `size` bytes: `partSizeBytes`, grown when the object would
 * need more than 10,000 parts (the same layout as a server-side multipart copy of it).
 */
export function partSizeFor(size: number | undefined, partSizeBytes: number): number {
  return size === undefined ? partSizeBytes : Math.max(partSizeBytes, Math.ceil(size / MAX_PARTS))
}

/**
 * Reusable part buffers, one pool per sink connection. A buffer is allocated only when no
 * free one of its size is left, so the pool never holds more buffers than were in use at
 * once (each streamed object uses at most `partConcurrency` in flight plus one filling).
 * Buffers no upload has used for a while are let go.
 */
export class PartBufferPool {
  readonly #free = new Map<number, Buffer[]>()
  readonly #taken = new Set<Buffer>()
  #idle: NodeJS.Timeout | undefined

  take(size: number): Buffer {
    if (this.#idle) {
      clearTimeout(this.#idle)
      this.#idle = undefined
    }
    // Uninitialized memory: only the bytes copied in are ever sent.
    const buffer = this.#free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size)
    this.#taken.add(buffer)
    return buffer
  }

  /** Give back a buffer from `take`, once nothing reads or writes it any more. */
  give(buffer: Buffer): void {
    if (!this.#taken.delete(buffer))
      throw new ProviderError({
        kind: 'internal',
        message: 'a part buffer was given back twice (or was never taken)',
      })
    let free = this.#free.get(buffer.byteLength)
    if (!free) {
      free = []
      this.#free.set(buffer.byteLength, free)
    }
    free.push(buffer)
    if (this.#taken.size === 0) {
      this.#idle = setTimeout(() => this.clear(), IDLE_RELEASE_MS)
      this.#idle.unref()
    }
  }

  /** Buffers taken and not given back. */
  get inUse(): number {
    return this.#taken.size
  }

  /** Buffers allocated and held by the pool, taken or free. */
  get held(): number {
    let free = 0
    for (const list of this.#free.values()) free += list.length
    return free + this.#taken.size
  }

  /** Let go of the free buffers (taken ones are dropped when given back after this). */
  clear(): void {
    if (this.#idle) clearTimeout(this.#idle)
    this.#idle = undefined
    this.#free.clear()
  }
}

/** The object's headers, set when it is created (PutObject or CreateMultipartUpload). */
export interface ObjectParams {
  Bucket: string
  Key: string
  ContentType?: string | undefined
  Metadata?: Record<string, string> | undefined
  /** `'*'`: create-only, on the PutObject or the CompleteMultipartUpload. */
  IfNoneMatch?: string | undefined
}

export interface UploadSettings {
  client: S3Client
  params: ObjectParams
  /** Every part but the last has exactly this many bytes; a body up to it is one PutObject. */
  partSize: number
  partConcurrency: number
  pool: PartBufferPool
  signal: AbortSignal
  /** The body's declared length, if any (a body may turn out longer or shorter). */
  size?: number | undefined
}

/**
 * One multipart upload, created when its first part is added. Parts go up `concurrency` at
 * a time; the first failure (or the caller's abort) stops the parts in flight and makes every
 * later call throw it.
 */
class MultipartUpload {
  readonly #settings: UploadSettings
  /** Aborted by the caller's signal or by the first failed part; the parts' requests use it. */
  readonly #stop = new AbortController()
  readonly #unlink: () => void
  readonly #inFlight = new Set<Promise<void>>()
  readonly #parts: CompletedPart[] = []
  #created: Promise<string> | undefined
  #count = 0

  constructor(settings: UploadSettings) {
    this.#settings = settings
    // One listener per part in flight and one for the body read, on top of the SDK's.
    setMaxListeners(settings.partConcurrency + 10, this.#stop.signal)
    const outer = settings.signal
    const onAbort = () => this.#stop.abort(outer.reason)
    if (outer.aborted) onAbort()
    else outer.addEventListener('abort', onAbort, { once: true })
    this.#unlink = () => outer.removeEventListener('abort', onAbort)
  }

  /** Aborted once the upload cannot complete; its reason is what the upload throws. */
  get signal(): AbortSignal {
    return this.#stop.signal
  }

  /**
   * Send `body` as the next part once fewer than `partConcurrency` parts are in flight.
   * `settled` is called exactly once, when nothing will read `body` any more: once its
   * UploadPart request has settled, or at once when the part is never sent.
   */
  async add(body: Uint8Array, settled: () => void = () => {}): Promise<void> {
    let partNumber: number
    let uploadId: string
    try {
      while (this.#inFlight.size >= this.#settings.partConcurrency)
        await Promise.race(this.#inFlight)
      this.#throwIfStopped()
      uploadId = await this.#create()
      this.#throwIfStopped()
      partNumber = ++this.#count
      if (partNumber > MAX_PARTS)
        throw new ProviderError({
          kind: 'data',
          message: `the object needs more than ${MAX_PARTS} parts of ${this.#settings.partSize} bytes; raise partSizeBytes`,
        })
    } catch (error) {
      settled()
      throw error
    }
    const { client, params } = this.#settings
    const part = client
      .send(
        new UploadPartCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.byteLength,
        }),
        { abortSignal: this.#stop.signal },
      )
      .then((response) => {
        if (!response.ETag)
          throw new ProviderError({
            kind: 'transient',
            message: `the store answered part ${partNumber} of ${JSON.stringify(params.Key)} without an ETag`,
          })
        this.#parts[partNumber - 1] = {
          PartNumber: partNumber,
          ETag: response.ETag,
          ChecksumCRC32: response.ChecksumCRC32,
          ChecksumCRC32C: response.ChecksumCRC32C,
          ChecksumCRC64NVME: response.ChecksumCRC64NVME,
          ChecksumSHA1: response.ChecksumSHA1,
          ChecksumSHA256: response.ChecksumSHA256,
        }
      })
      .catch((error: unknown) => {
        // The first failure stops the rest; parts it aborts fail after it and change nothing.
        if (!this.#stop.signal.aborted) this.#stop.abort(error)
      })
      .finally(() => {
        this.#inFlight.delete(part)
        settled()
      })
    this.#inFlight.add(part)
  }

  /** Wait for every part, then assemble the object; a failure aborts the upload. */
  async complete(): Promise<void> {
    try {
      await this.#settle()
      this.#throwIfStopped()
      const { client, params, signal } = this.#settings
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: await this.#create(),
          MultipartUpload: { Parts: this.#parts },
          IfNoneMatch: params.IfNoneMatch,
        }),
        { abortSignal: signal },
      )
    } catch (error) {
      await this.abort(error)
      throw error
    } finally {
      this.#unlink()
    }
  }

  /**
   * Stop the parts in flight, wait until every one has settled (no request reads a part
   * buffer any more, and no part can land after the upload is gone), then abort the upload
   * (as lib-storage's `leavePartsOnError: false`). Never throws.
   */
  async abort(reason: unknown): Promise<void> {
    this.#unlink()
    if (!this.#stop.signal.aborted) this.#stop.abort(reason)
    await this.#settle()
    const uploadId = await this.#created?.catch(() => undefined)
    if (uploadId === undefined) return
    const { client, params } = this.#settings
    // Without the caller's signal, which may be the reason for the abort.
    await client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: uploadId,
        }),
      )
      .catch(() => {})
  }

  /** The upload id. CreateMultipartUpload gets no abort signal: an upload created on the
   * server is always known here, so an abort can remove it. */
  #create(): Promise<string> {
    if (!this.#created) {
      const { client, params } = this.#settings
      this.#created = (async () => {
        // As lib-storage: with checksums when supported (AWS), the parts carry CRC32s the
        // completion must repeat.
        const checksums = await client.config.requestChecksumCalculation()
        const created = await client.send(
          new CreateMultipartUploadCommand({
            Bucket: params.Bucket,
            Key: params.Key,
            ContentType: params.ContentType,
            Metadata: params.Metadata,
            ChecksumAlgorithm: checksums === 'WHEN_SUPPORTED' ? 'CRC32' : undefined,
          }),
        )
        if (!created.UploadId)
          throw new ProviderError({
            kind: 'transient',
            message: `the store created a multipart upload of ${JSON.stringify(params.Key)} without an upload id`,
          })
        return created.UploadId
      })()
      this.#created.catch(() => {})
    }
    return this.#created
  }

  async #settle(): Promise<void> {
    // Part promises never reject.
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight)
  }

  #throwIfStopped(): void {
    if (this.#stop.signal.aborted) throw abortReason(this.#stop.signal)
  }
}

function putObject(settings: UploadSettings, body: Uint8Array): Promise<unknown> {
  const { client, params, signal } = settings
  // A byte body: the SDK signs it with its SHA-256, which the store checks.
  return client.send(
    new PutObjectCommand({ ...params, Body: body, ContentLength: body.byteLength }),
    { abortSignal: signal },
  )
}

/**
 * Upload a body held in memory: one PutObject when it fits in one part, otherwise a
 * multipart upload of views of it (no copy).
 */
export async function uploadBytes(body: Uint8Array, settings: UploadSettings): Promise<void> {
  const { partSize } = settings
  if (body.byteLength <= partSize) {
    await putObject(settings, body)
    return
  }
  const upload = new MultipartUpload(settings)
  try {
    for (let offset = 0; offset < body.byteLength; offset += partSize)
      await upload.add(body.subarray(offset, offset + partSize))
  } catch (error) {
    await upload.abort(error)
    throw error
  }
  await upload.complete()
}

/**
 * Stream a body into the store: its chunks are copied into part buffers from the pool as
 * they arrive. A body that ends within the first part is one PutObject (as lib-storage: a
 * body of exactly one part too); a longer one is a multipart upload of parts of exactly
 * `partSize` bytes (the last one shorter or equal), so its ETag is the one lib-storage and
 * rclone give the same bytes with the same part size. A full buffer is sent as a part only
 * once a further byte arrives, so the last part is never empty. The body is read no faster
 * than the parts go up: at most `partConcurrency` buffers in flight and one filling.
 * A body declared shorter than one part is read into a buffer of its size instead (so many
 * small objects in flight do not each hold a part buffer), and goes on in part buffers if
 * it turns out longer. An abort (or a failed part) stops a body read that is waiting, too.
 */
export async function uploadStream(
  body: AsyncIterable<Uint8Array>,
  settings: UploadSettings,
): Promise<void> {
  const { pool, partSize } = settings
  const iterator = body[Symbol.asyncIterator]()
  let upload: MultipartUpload | undefined
  const { size } = settings
  const small = size !== undefined && Number.isInteger(size) && size >= 0 && size < partSize
  let buffer: Buffer | undefined = small ? Buffer.allocUnsafe(size) : pool.take(partSize)
  /** Whether `buffer` is the pool's (else it is a small body's own). */
  let pooled = !small
  let filled = 0
  let ended = false
  try {
    for (;;) {
      const next = await raceAbort(iterator.next(), upload?.signal ?? settings.signal)
      if (next.done) {
        ended = true
        break
      }
      let chunk = next.value
      while (chunk.byteLength > 0) {
        if (!pooled && filled === buffer!.byteLength) {
          // A body longer than it said: it goes on in a part buffer.
          const own: Buffer = buffer!
          buffer = pool.take(partSize)
          pooled = true
          own.copy(buffer, 0, 0, filled)
        }
        if (filled === partSize) {
          // More bytes follow a full buffer: it is a part, and not the last one.
          upload ??= new MultipartUpload(settings)
          const full: Buffer = buffer!
          buffer = undefined
          await upload.add(full, () => pool.give(full))
          buffer = pool.take(partSize)
          filled = 0
        }
        const length = Math.min(chunk.byteLength, buffer!.byteLength - filled)
        buffer!.set(length === chunk.byteLength ? chunk : chunk.subarray(0, length), filled)
        filled += length
        chunk = chunk.subarray(length)
      }
    }
    if (!upload) {
      await putObject(settings, buffer!.subarray(0, filled))
      return
    }
    const last: Buffer = buffer!
    buffer = undefined
    await upload.add(last.subarray(0, filled), () => pool.give(last))
  } catch (error) {
    await upload?.abort(error)
    throw error
  } finally {
    // The buffer being filled (or a single part's, its PutObject settled).
    if (buffer && pooled) pool.give(buffer)
    // A body left unread (failure, abort): let its source close (a stream, a GetObject).
    if (!ended) {
      try {
        Promise.resolve(iterator.return?.()).catch(() => {})
      } catch {}
    }
  }
  await upload.complete()
}
