// A listed object's body is replayable (the runtime hands it to the sink without a copy and a
// retry reads it again) only when every read is pinned to the listed version by its ETag.
// A store that lists no ETag would let a second read give other bytes: such a body is read
// once, like any other stream.
import { S3Client } from '@aws-sdk/client-s3'
import { isReplayableBody, readBytes } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { objectBody } from './s3-source.js'

/** A client that records each GetObject's input and answers it with `body`, without a network. */
function recordingClient(body: Uint8Array) {
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIAEXAMPLE00000001', secretAccessKey: 'secret-one-000000' },
  })
  const inputs: Record<string, unknown>[] = []
  client.middlewareStack.add(
    () => async (args) => {
      inputs.push({ ...(args.input as Record<string, unknown>) })
      return {
        output: {
          $metadata: { httpStatusCode: 200 },
          Body: (async function* () {
            yield body
          })(),
        },
        response: {},
      } as never
    },
    { step: 'initialize', name: 'answerWithoutNetwork' },
  )
  return { client, inputs }
}

describe('the body of a listed S3 object', () => {
  const signal = new AbortController().signal
  const bytes = new TextEncoder().encode('listed bytes')

  it('is replayable when the listing gave its ETag: every read is pinned to it (If-Match)', async () => {
    const { client, inputs } = recordingClient(bytes)
    const body = objectBody(client, 'bucket', 'a.bin', '"0123abcd"', signal)
    expect(isReplayableBody(body)).toBe(true)
    expect(await readBytes(body)).toEqual(Buffer.from(bytes))
    expect(await readBytes(body)).toEqual(Buffer.from(bytes))
    expect(inputs).toEqual([
      { Bucket: 'bucket', Key: 'a.bin', IfMatch: '"0123abcd"' },
      { Bucket: 'bucket', Key: 'a.bin', IfMatch: '"0123abcd"' },
    ])
  })

  it('is an ordinary stream, not replayable, when the listing gave no ETag (an unpinned read)', async () => {
    for (const etag of [undefined, '']) {
      const { client, inputs } = recordingClient(bytes)
      const body = objectBody(client, 'bucket', 'a.bin', etag, signal)
      expect(isReplayableBody(body)).toBe(false)
      expect(await readBytes(body)).toEqual(Buffer.from(bytes))
      expect(inputs).toEqual([{ Bucket: 'bucket', Key: 'a.bin', IfMatch: etag }])
    }
  })
})
