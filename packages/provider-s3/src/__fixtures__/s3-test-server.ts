// Test-only helpers: the S3 server the tests use (the local Ceph RGW started by the root
// global setup, or a real one through NVISY_TEST_S3_*), and a bucket per test file.
import { randomBytes } from 'node:crypto'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { serviceSkipReason } from '@nvisy/provider-testkit'

export const s3Endpoint = process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
export const s3AccessKeyId = process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001'
export const s3SecretAccessKey =
  process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001'
export const s3Region = process.env.NVISY_TEST_S3_REGION ?? 'us-east-1'

export function s3Input(bucket: string, overrides: { secretAccessKey?: string } = {}) {
  return {
    credentials: {
      accessKeyId: s3AccessKeyId,
      secretAccessKey: overrides.secretAccessKey ?? s3SecretAccessKey,
    },
    params: { bucket, region: s3Region, endpoint: s3Endpoint },
  }
}

export function testS3Client(): S3Client {
  return new S3Client({
    region: s3Region,
    endpoint: s3Endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3AccessKeyId, secretAccessKey: s3SecretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

export async function s3SkipReason(): Promise<string | false> {
  return serviceSkipReason('S3 server', s3Endpoint, async () => {
    const response = await fetch(s3Endpoint, { signal: AbortSignal.timeout(3000) })
    await response.arrayBuffer()
    return true
  })
}

export function randomBucketName(label: string): string {
  return `nvisy-${label}-${randomBytes(4).toString('hex')}`
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
}

export async function emptyBucket(
  client: S3Client,
  bucket: string,
  prefix?: string,
): Promise<void> {
  let token: string | undefined
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    )
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length > 0)
      await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
      )
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
}

export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  await emptyBucket(client, bucket)
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
}

export async function listKeys(
  client: S3Client,
  bucket: string,
  prefix?: string,
): Promise<string[]> {
  const keys: string[] = []
  let token: string | undefined
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    )
    for (const o of page.Contents ?? []) keys.push(o.Key!)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return keys
}
