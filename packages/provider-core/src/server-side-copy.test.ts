import { Type } from '@sinclair/typebox'
import { describe, expect, it } from 'vitest'
import { SPECIFICATION_VERSION } from './contract.js'
import { defineProvider } from './define-provider.js'
import { Secret } from './schema.js'
import { canCopyServerSide } from './server-side-copy.js'

const Credentials = Type.Object(
  { keyId: Type.String(), secret: Secret(Type.String({ minLength: 1 })) },
  { additionalProperties: false },
)
const Params = Type.Object(
  {
    bucket: Type.String({ minLength: 1 }),
    endpoint: Type.String({ minLength: 1 }),
    region: Type.String({ default: 'r1' }),
  },
  { additionalProperties: false },
)
const Stream = Type.Object(
  { prefix: Type.String({ default: '' }), kind: Type.Optional(Type.Literal('record')) },
  { additionalProperties: false },
)
const SinkStream = Type.Object(
  { copy: Type.Boolean({ default: true }) },
  { additionalProperties: false },
)

function storeProvider(id: string, withHook = true) {
  return defineProvider({
    id,
    version: '0.0.0',
    specificationVersion: SPECIFICATION_VERSION,
    credentials: Credentials,
    params: Params,
    source: {
      data: ['blob', 'record'],
      stream: Stream,
      context: Type.Object({ key: Type.String() }),
      ordering: 'key',
      dataKindOf: (stream) => (stream.kind === 'record' ? 'record' : 'blob'),
    },
    sink: { data: 'blob', stream: SinkStream, idempotentBy: 'key' },
    // Same endpoint and region; buckets may differ; the sink stream may turn copies off.
    serverSideCopy: withHook
      ? (source, sink) =>
          source.params.endpoint === sink.params.endpoint &&
          source.params.region === sink.params.region &&
          sink.stream.copy
      : undefined,
    async connect() {
      return { async check() {}, async close() {} }
    },
  })
}

const store = storeProvider('store')
const credentials = { keyId: 'AK1', secret: 'secret-one' }
const end = (
  params: Record<string, unknown>,
  creds: Record<string, unknown> = credentials,
  stream: unknown = {},
  provider = store,
) => ({ provider, input: { credentials: { ...creds }, params }, stream })
const source = end({ bucket: 'src', endpoint: 'http://s3.local' })

describe('canCopyServerSide', () => {
  it('says yes for one provider, equal credentials (separate objects) and one place, buckets apart', () => {
    expect(canCopyServerSide(source, end({ bucket: 'dst', endpoint: 'http://s3.local' }))).toBe(
      true,
    )
    // Defaults applied before comparing: region omitted on one side is the default on both.
    expect(
      canCopyServerSide(source, end({ bucket: 'dst', endpoint: 'http://s3.local', region: 'r1' })),
    ).toBe(true)
  })

  it('says no when the credentials differ in any field', () => {
    const sink = (creds: Record<string, unknown>) =>
      end({ bucket: 'dst', endpoint: 'http://s3.local' }, creds)
    expect(canCopyServerSide(source, sink({ keyId: 'AK1', secret: 'secret-two' }))).toBe(false)
    expect(canCopyServerSide(source, sink({ keyId: 'AK2', secret: 'secret-one' }))).toBe(false)
  })

  it('says no when the provider says the params are two places, or the sink stream turns copies off', () => {
    expect(canCopyServerSide(source, end({ bucket: 'dst', endpoint: 'http://other.local' }))).toBe(
      false,
    )
    expect(
      canCopyServerSide(source, end({ bucket: 'dst', endpoint: 'http://s3.local', region: 'r2' })),
    ).toBe(false)
    expect(
      canCopyServerSide(
        source,
        end({ bucket: 'dst', endpoint: 'http://s3.local' }, credentials, { copy: false }),
      ),
    ).toBe(false)
  })

  it('says no across providers, for a provider without the hook, and for a non-blob source stream', () => {
    const twin = storeProvider('store')
    expect(
      canCopyServerSide(
        source,
        end({ bucket: 'dst', endpoint: 'http://s3.local' }, credentials, {}, twin),
      ),
    ).toBe(false)
    const plain = storeProvider('plain', false)
    expect(
      canCopyServerSide(
        end({ bucket: 'src', endpoint: 'http://s3.local' }, credentials, {}, plain),
        end({ bucket: 'dst', endpoint: 'http://s3.local' }, credentials, {}, plain),
      ),
    ).toBe(false)
    expect(
      canCopyServerSide(
        end({ bucket: 'src', endpoint: 'http://s3.local' }, credentials, { kind: 'record' }),
        end({ bucket: 'dst', endpoint: 'http://s3.local' }),
      ),
    ).toBe(false)
  })

  it('says no, without throwing, for invalid inputs or streams', () => {
    expect(canCopyServerSide(source, end({ bucket: '', endpoint: 'http://s3.local' }))).toBe(false)
    expect(
      canCopyServerSide(source, end({ bucket: 'dst', endpoint: 'http://s3.local' }, { keyId: 1 })),
    ).toBe(false)
    expect(
      canCopyServerSide(
        source,
        end({ bucket: 'dst', endpoint: 'http://s3.local' }, credentials, { copy: 'yes' }),
      ),
    ).toBe(false)
  })

  it('leaves the inputs as they were (defaults are applied to copies)', () => {
    const sink = end({ bucket: 'dst', endpoint: 'http://s3.local' })
    const before = structuredClone({ input: sink.input, stream: sink.stream })
    expect(canCopyServerSide(source, sink)).toBe(true)
    expect(sink.input).toEqual(before.input)
    expect(sink.stream).toEqual(before.stream)
  })
})
