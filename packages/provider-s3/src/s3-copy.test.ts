import { canCopyServerSide } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { copySource } from './s3-copy.js'
import { s3Provider } from './s3-provider.js'

const credentials = { accessKeyId: 'AKIAEXAMPLE00000001', secretAccessKey: 'secret-one-000000' }
const node = (
  params: Record<string, unknown>,
  stream: Record<string, unknown> = {},
  creds: Record<string, unknown> = credentials,
) => ({ provider: s3Provider, input: { credentials: { ...creds }, params }, stream })
const source = node({ bucket: 'source-bucket', endpoint: 'http://127.0.0.1:7480' })

describe('when an S3 -> S3 edge copies server-side', () => {
  it('copies between buckets on one endpoint (URLs compared normalized) with the same keys', () => {
    const sink = (endpoint: string) => node({ bucket: 'sink-bucket', endpoint })
    expect(canCopyServerSide(source, sink('http://127.0.0.1:7480'))).toBe(true)
    expect(canCopyServerSide(source, sink('http://127.0.0.1:7480/'))).toBe(true)
    expect(canCopyServerSide(source, sink('HTTP://127.0.0.1:7480'))).toBe(true)
    // The same bucket too (another prefix).
    expect(
      canCopyServerSide(
        source,
        node({ bucket: 'source-bucket', endpoint: 'http://127.0.0.1:7480' }),
      ),
    ).toBe(true)
    // AWS: no endpoint on either side, the same region.
    expect(
      canCopyServerSide(
        node({ bucket: 'a-bucket', region: 'eu-west-1' }),
        node({ bucket: 'b-bucket', region: 'eu-west-1' }),
      ),
    ).toBe(true)
  })

  it('streams across endpoints, regions, addressing styles and credentials', () => {
    expect(
      canCopyServerSide(source, node({ bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7481' })),
    ).toBe(false)
    expect(
      canCopyServerSide(source, node({ bucket: 'sink-bucket', endpoint: 'http://localhost:7480' })),
    ).toBe(false)
    expect(
      canCopyServerSide(
        source,
        node({ bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7480', region: 'eu-west-1' }),
      ),
    ).toBe(false)
    expect(canCopyServerSide(source, node({ bucket: 'sink-bucket' }))).toBe(false)
    expect(
      canCopyServerSide(
        source,
        node({ bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7480', forcePathStyle: false }),
      ),
    ).toBe(false)
    expect(
      canCopyServerSide(
        node({ bucket: 'a-bucket', region: 'eu-west-1' }),
        node({ bucket: 'b-bucket', region: 'us-east-1' }),
      ),
    ).toBe(false)
    const other = { ...credentials, secretAccessKey: 'secret-two-000000' }
    expect(
      canCopyServerSide(
        source,
        node({ bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7480' }, {}, other),
      ),
    ).toBe(false)
    // The default credential chain on one side, keys on the other: not known to be one account.
    expect(
      canCopyServerSide(
        source,
        node({ bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7480' }, {}, {}),
      ),
    ).toBe(false)
  })

  it('streams when the sink stream turns copies off', () => {
    expect(
      canCopyServerSide(
        source,
        node(
          { bucket: 'sink-bucket', endpoint: 'http://127.0.0.1:7480' },
          { serverSideCopy: false },
        ),
      ),
    ).toBe(false)
  })
})

describe('copySource', () => {
  it('URL-encodes the key, keeping slashes, and adds the version', () => {
    expect(copySource({ bucket: 'b', key: 'dir/a file+ü?#%.txt' })).toBe(
      'b/dir/a%20file%2B%C3%BC%3F%23%25.txt',
    )
    expect(copySource({ bucket: 'b', key: 'k', versionId: 'v 1' })).toBe('b/k?versionId=v%201')
  })
})
