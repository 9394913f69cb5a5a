import { PutObjectCommand } from '@aws-sdk/client-s3'
import { type BlobData, readBytes } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  createBucket,
  deleteBucket,
  emptyBucket,
  listKeys,
  randomBucketName,
  s3Input,
  s3SkipReason,
  testS3Client,
} from './__fixtures__/s3-test-server.js'
import { s3Provider } from './s3-provider.js'

const skip = await s3SkipReason()
const client = testS3Client()
const bucket = randomBucketName('conf')

// Item n is the object `src/item-<n, 6 digits>.txt`; sink items land under `out/`.
const key = (n: number) => `item-${String(n).padStart(6, '0')}.txt`
const numberOf = (k: string) => Number(/item-(\d+)\.txt$/.exec(k)![1])

runProviderConformance({
  name: 's3',
  provider: s3Provider,
  skip,
  input: () => s3Input(bucket),
  badCredentials: { input: (canary) => s3Input(bucket, { secretAccessKey: canary }) },
  badParams: {
    input: { credentials: {}, params: { bucket: 'ok-bucket', endpoint: 'not a url' } },
    path: '/params/endpoint',
  },
  fixture: {
    setup: () => createBucket(client, bucket),
    teardown: async () => {
      await deleteBucket(client, bucket)
      client.destroy()
    },
    clear: () => emptyBucket(client, bucket),
    async seed(from, count) {
      for (let n = from; n < from + count; n++) {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: `src/${key(n)}`, Body: `body of item ${n}` }),
        )
      }
    },
    stream: { prefix: 'src/' },
    async itemNumber(data) {
      const blob = data as BlobData
      // The body must match the key it travels with.
      const body = (await readBytes(blob.body)).toString()
      if (body !== `body of item ${numberOf(blob.key)}`)
        throw new Error(`body of ${blob.key} is ${body}`)
      return numberOf(blob.key)
    },
    sink: {
      stream: { prefix: 'out/' },
      makeItem: (i) => ({
        kind: 'blob',
        key: key(i),
        body: Buffer.from(`written ${i}`),
        contentType: 'text/plain',
      }),
      makeBadItem: () => ({ kind: 'blob', key: `bad\u0000key`, body: Buffer.from('x') }),
      storedItems: async () => (await listKeys(client, bucket, 'out/')).map(numberOf),
    },
  },
})
