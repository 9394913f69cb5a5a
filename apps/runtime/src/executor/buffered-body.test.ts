import { ProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { BufferedBody } from './buffered-body.js'
import { DEFAULTS } from './defaults.js'

const fail = (error: unknown) =>
  new ProviderError({ kind: 'data', message: `buffering failed: ${(error as Error).message}` })

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const chunk of body) out.push(chunk)
  return out
}

describe('BufferedBody', () => {
  it('reads its source once and yields the same chunks to every reader, not joined', async () => {
    const chunks = [Buffer.from('ab'), Buffer.from('cde'), Buffer.from('f')]
    let reads = 0
    const source = (async function* () {
      reads++
      yield* chunks
    })()
    const body = new BufferedBody(source, fail)
    expect(body.size).toBeUndefined()
    const first = await collect(body)
    const second = await collect(body)
    expect(reads).toBe(1)
    expect(first).toHaveLength(3)
    for (const [i, chunk] of first.entries()) expect(chunk).toBe(chunks[i])
    expect(Buffer.concat(second).toString()).toBe('abcdef')
    expect(body.size).toBe(6)
  })

  it('fails through `fail` when the source is larger than the fan-out ceiling', async () => {
    const big = Buffer.alloc(DEFAULTS.maxFanOutBlobBytes + 1)
    const body = new BufferedBody(
      (async function* () {
        yield big
      })(),
      fail,
    )
    const error = await collect(body).catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.message).toBe(
      `buffering failed: body is larger than ${DEFAULTS.maxFanOutBlobBytes} bytes; stream it instead of reading it whole`,
    )
  })
})
