// The S3 server the tests use: the local Ceph RADOS Gateway (scripts/services/s3-server.sh)
// or any server named by NVISY_TEST_S3_*; a bucket per test file.
import { randomBytes } from 'node:crypto'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { serviceSkipReason } from '@nvisy/provider-testkit'

export const s3Endpoint = process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
const accessKeyId = process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001'
const secretAccessKey =
  process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001'
const region = process.env.NVISY_TEST_S3_REGION ?? 'us-east-1'

export function s3SkipReason() {
  return serviceSkipReason('S3 server', s3Endpoint, async () => {
    const response = await fetch(s3Endpoint, { signal: AbortSignal.timeout(3000) })
    await response.arrayBuffer()
    return true
  })
}

export function s3Connection(bucket: string) {
  return {
    params: { bucket, region, endpoint: s3Endpoint },
    credentials: { accessKeyId, secretAccessKey },
  }
}

export class TestBucket {
  readonly name = `nvisy-rel-${randomBytes(4).toString('hex')}`
  readonly client = new S3Client({
    region,
    endpoint: s3Endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })

  async create() {
    await this.client.send(new CreateBucketCommand({ Bucket: this.name }))
  }

  async put(key: string, body: Uint8Array) {
    await this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: body }))
  }

  async destroy() {
    try {
      let token: string | undefined
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.name, ContinuationToken: token }),
        )
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
        if (keys.length > 0)
          await this.client.send(
            new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: keys, Quiet: true } }),
          )
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      await this.client.send(new DeleteBucketCommand({ Bucket: this.name }))
    } catch {
      // Best effort: the bucket name is random.
    } finally {
      this.client.destroy()
    }
  }
}
