import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  type BlobData,
  type ByteSource,
  type Data,
  isReplayableBody,
  itemDataError,
  objectChangedError,
  ProviderError,
  type ReplayableBody,
  toProviderError,
  type WriteResult,
  writeEachConcurrently,
} from '@nvisy/provider-core'
import { plainMd5, type S3Copier } from './s3-copy.js'
import { classifyS3Error } from './s3-errors.js'
import { encodeMetadata, metadataKeyProblem } from './s3-metadata.js'
import type { S3SinkStream } from './s3-schemas.js'
import { HeadObjectCommand, PutObjectCommand } from './s3-sdk.js'
import {
  type ObjectParams,
  PartBufferPool,
  partSizeFor,
  uploadBytes,
  uploadStream,
} from './s3-upload.js'

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
 * The Content-MD5 (base64) of a blob read from a single-part S3 object, taken from the ETag the
 * source listed (a single-part ETag is the MD5 of the object's bytes), when the blob's size is
 * the listed size and fits in one part. Undefined otherwise: multipart or opaque ETags, no
 * origin (another source, or a body changed after reading, which deletes `origin`).
 */
function sourceContentMd5(blob: BlobData, partSizeBytes: number): string | undefined {
  const origin = blob.origin
  if (!origin || blob.size === undefined || origin.size !== blob.size) return undefined
  if (blob.size > partSizeBytes) return undefined
  const md5 = plainMd5(origin.etag)
  return md5 === undefined ? undefined : Buffer.from(md5, 'hex').toString('base64')
}

/**
 * A body of at most `maxBytes` as its chunks (one chunk when it is a Uint8Array), with its
 * length. A longer body gives back the chunks read so far and the rest, to be streamed.
 */
async function collectBody(
  body: ByteSource,
  maxBytes: number,
): Promise<
  { chunks: Uint8Array[]; size: number } | { read: Uint8Array[]; rest: AsyncIterator<Uint8Array> }
> {
  if (body instanceof Uint8Array) return { chunks: [body], size: body.byteLength }
  const iterator = body[Symbol.asyncIterator]()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const next = await iterator.next()
    if (next.done) return { chunks, size }
    chunks.push(next.value)
    size += next.value.byteLength
    if (size > maxBytes) return { read: chunks, rest: iterator }
  }
}

/** The chunks already read, then the rest of the body. */
async function* resume(read: Uint8Array[], rest: AsyncIterator<Uint8Array>) {
  yield* read
  for (;;) {
    const next = await rest.next()
    if (next.done) return
    yield next.value
  }
}

/**
 * Sign `command`'s payload as `UNSIGNED-PAYLOAD` rather than hashing it: it carries a
 * Content-MD5, which the store checks against the bytes it receives. The signer hashes a byte
 * body unless the request names its payload hash already (the SDK's flexible checksums name
 * theirs for a streamed body: that one is kept).
 */
function unsignedPayload(
  command: InstanceType<typeof PutObjectCommand>,
): InstanceType<typeof PutObjectCommand> {
  command.middlewareStack.add(
    (next) => (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers
      if (headers && headers['x-amz-content-sha256'] === undefined)
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
      return next(args)
    },
    { step: 'build', name: 'nvisyUnsignedPayloadWithContentMd5' },
  )
  return command
}

function errorCode(error: unknown): string | undefined {
  return (error as { Code?: string; name?: string }).Code ?? (error as Error).name
}

/** `chunks` (`size` bytes in all) as one buffer: the chunk itself when there is one. */
function joined(chunks: Uint8Array[], size: number): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
}

/** One PutObject of `chunks` joined, its payload signed with their SHA-256 (the SDK hashes a byte body). */
async function putSigned(
  client: S3Client,
  params: ObjectParams,
  chunks: Uint8Array[],
  size: number,
  signal: AbortSignal,
): Promise<void> {
  const body = joined(chunks, size)
  await client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: size }), {
    abortSignal: signal,
  })
}

/**
 * After the store refused `contentMd5` (BadDigest) for these bytes: the same MD5 here means
 * they were damaged on the way to the store (a transient failure, retried); another MD5 means
 * the ETag is not the MD5 of the bytes read (an SSE-KMS or SSE-C source, another store's ETag
 * form), and the object is put with a signed payload.
 */
async function afterBadDigest(
  client: S3Client,
  params: ObjectParams,
  chunks: Uint8Array[],
  size: number,
  contentMd5: string,
  signal: AbortSignal,
  refused: unknown,
): Promise<void> {
  const hash = createHash('md5')
  for (const chunk of chunks) hash.update(chunk)
  if (hash.digest('base64') === contentMd5) {
    throw new ProviderError({
      kind: 'transient',
      message: `the store received other bytes than were sent for ${JSON.stringify(params.Key)} (BadDigest)`,
      code: 'BadDigest',
      cause: refused,
    })
  }
  await putSigned(client, params, chunks, size, signal)
}

/**
 * One PutObject of a body held in memory (`chunks`, `size` bytes). Without `contentMd5` its
 * bytes are joined and the payload is signed with their SHA-256. With `contentMd5` (from the
 * source's ETag) it is sent with that `Content-MD5`, which the store checks against the bytes
 * it receives (BadDigest otherwise), and the payload is signed as `UNSIGNED-PAYLOAD` rather
 * than hashed again (as rclone does for a single-part copy); several chunks are streamed as
 * they are, not joined. That checks more than the payload hash did: the stored object must be
 * the source's bytes, not only the bytes this process sent. (The SDK does not retry a streamed
 * body; the runtime retries the batch.) A refused digest: see `afterBadDigest`.
 */
async function putBytes(
  client: S3Client,
  params: ObjectParams,
  chunks: Uint8Array[],
  size: number,
  contentMd5: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (contentMd5 === undefined) return putSigned(client, params, chunks, size, signal)
  const command = new PutObjectCommand({
    ...params,
    // Create-only puts are joined: the SDK warns on the console about every failed streamed
    // request, and an existing key is an expected failure there.
    Body: chunks.length === 1 || params.IfNoneMatch ? joined(chunks, size) : Readable.from(chunks),
    ContentLength: size,
    ContentMD5: contentMd5,
  })
  try {
    await client.send(unsignedPayload(command), { abortSignal: signal })
  } catch (error) {
    if (errorCode(error) !== 'BadDigest') throw error
    await afterBadDigest(client, params, chunks, size, contentMd5, signal, error)
  }
}

/**
 * One PutObject of an S3 source's object of at most one part, from its replayable body (see
 * `REPLAYABLE_BODY`): its bytes are streamed from the GetObject into the PutObject as they
 * arrive (no body is held in memory, and the upload starts with the first bytes read), with
 * the listed ETag as Content-MD5 and an unsigned payload as in `putBytes`. The body must be exactly `size` bytes: one byte more, or its end
 * before `size`, aborts the request, so the store never completes an object of other bytes
 * (the SDK pipes a stream body into the request, and a failed stream would otherwise leave the
 * request waiting for bytes that never come). A failure of the source fails the put with the
 * source's error. When the store refuses the digest, the body is read again (the same
 * version: a replayable body reads the same bytes) and `afterBadDigest` decides.
 */
async function putStreamed(
  client: S3Client,
  params: ObjectParams,
  body: ReplayableBody,
  key: string,
  size: number,
  contentMd5: string,
  signal: AbortSignal,
): Promise<void> {
  const request = new AbortController()
  let failure: unknown
  const fail = (error: unknown) => {
    failure ??= error
    request.abort(error)
    return error
  }
  async function* exactly(): AsyncGenerator<Uint8Array, void, undefined> {
    let sent = 0
    try {
      for await (const chunk of body) {
        sent += chunk.byteLength
        // More bytes than listed: the object is not the listed version (a store that ignores
        // If-Match on GetObject), whatever its MD5.
        if (sent > size) throw objectChangedError(key)
        yield chunk
      }
    } catch (error) {
      throw fail(error)
    }
    if (sent !== size) throw fail(objectChangedError(key))
  }
  const stream = Readable.from(exactly())
  // The SDK pipes the body (pipe does not forward errors): the failure is kept above and the
  // request aborted; this listener keeps the stream's 'error' from being unhandled.
  stream.on('error', () => {})
  const command = new PutObjectCommand({
    ...params,
    Body: stream,
    ContentLength: size,
    ContentMD5: contentMd5,
  })
  try {
    await client.send(unsignedPayload(command), {
      abortSignal: AbortSignal.any([signal, request.signal]),
    })
  } catch (error) {
    if (failure !== undefined) throw failure
    if (errorCode(error) !== 'BadDigest') throw error
    const again = await collectBody(body, size)
    if (!('chunks' in again) || again.size !== size) throw objectChangedError(key)
    await afterBadDigest(client, params, again.chunks, size, contentMd5, signal, error)
  }
}

/**
 * Upload a batch of blobs, `concurrency` objects at a time, each streamed through a
 * multipart upload (a single PutObject when it fits in one part; see s3-upload), with part
 * buffers from `parts` (the connection's pool; one for this batch when none is given),
 * `partConcurrency` parts in flight per object. Put-by-key is
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
  parts: PartBufferPool = new PartBufferPool(),
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
        const params: ObjectParams = {
          Bucket: bucket,
          Key: key,
          ContentType: blob.contentType,
          Metadata: encodeMetadata(blob.metadata),
          IfNoneMatch: stream.createOnly ? '*' : undefined,
        }
        let source: ByteSource = blob.body
        const contentMd5 = sourceContentMd5(blob, stream.partSizeBytes)
        if (
          contentMd5 !== undefined &&
          isReplayableBody(blob.body) &&
          blob.size !== undefined &&
          !stream.createOnly
        ) {
          await putStreamed(
            client,
            params,
            blob.body,
            blob.origin?.key ?? blob.key,
            blob.size,
            contentMd5,
            stop,
          )
          return undefined
        }
        if (contentMd5 !== undefined) {
          const collected = await collectBody(blob.body, stream.partSizeBytes)
          if ('chunks' in collected) {
            // A body of another length than the source listed is not the bytes of that ETag.
            const md5 = collected.size === blob.size ? contentMd5 : undefined
            await putBytes(client, params, collected.chunks, collected.size, md5, stop)
            return undefined
          }
          source = resume(collected.read, collected.rest)
        }
        const partSize = partSizeFor(blob.size, stream.partSizeBytes)
        const multipart =
          source instanceof Uint8Array
            ? source.byteLength > partSize
            : blob.size === undefined || blob.size > partSize
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
        const settings = {
          client,
          params,
          partSize,
          partConcurrency: stream.partConcurrency,
          pool: parts,
          signal: stop,
          size: blob.size,
        }
        if (source instanceof Uint8Array) await uploadBytes(source, settings)
        else await uploadStream(source, settings)
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
