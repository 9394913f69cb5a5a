import { type BlobData, readBytes } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import {
  brokenServiceAccount,
  gcsInput,
  gcsSkipReason,
  listNames,
  randomBucketName,
  testStorage,
} from './__fixtures__/gcs-test-server.js'
import { gcsProvider } from './gcs-provider.js'

const skip = await gcsSkipReason()
const storage = testStorage()
const bucket = randomBucketName('conf')

const key = (n: number) => `item-${String(n).padStart(6, '0')}.txt`
const numberOf = (name: string) => Number(/item-(\d+)\.txt$/.exec(name)![1])

runProviderConformance({
  name: 'gcs',
  provider: gcsProvider,
  skip,
  input: () => gcsInput(bucket),
  badCredentials: {
    input: (canary) => gcsInput(bucket, { serviceAccountJson: brokenServiceAccount(canary) }),
  },
  badParams: {
    input: { credentials: {}, params: { bucket: 'ok-bucket', apiEndpoint: 'not a url' } },
    path: '/params/apiEndpoint',
  },
  fixture: {
    setup: async () => {
      await storage.createBucket(bucket)
    },
    teardown: async () => {
      await storage.bucket(bucket).deleteFiles({ force: true })
      await storage
        .bucket(bucket)
        .delete()
        .catch(() => {})
    },
    clear: async () => {
      await storage.bucket(bucket).deleteFiles({ force: true })
    },
    async seed(from, count) {
      for (let n = from; n < from + count; n++) {
        await storage
          .bucket(bucket)
          .file(`src/${key(n)}`)
          .save(`body of item ${n}`, { resumable: false })
      }
    },
    stream: { prefix: 'src/' },
    async itemNumber(data) {
      const blob = data as BlobData
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
      makeBadItem: () => ({ kind: 'blob', key: 'bad\nname', body: Buffer.from('x') }),
      storedItems: async () => (await listNames(storage, bucket, 'out/')).map(numberOf),
    },
  },
})
