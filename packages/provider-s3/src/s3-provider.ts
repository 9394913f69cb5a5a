import {
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'
import {
  defineProvider,
  ProviderError,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import { S3Copier, sameS3Place } from './s3-copy.js'
import { classifyS3Error } from './s3-errors.js'
import { S3Context, S3Credentials, S3Params, S3SinkStream, S3Stream } from './s3-schemas.js'
import { writeS3 } from './s3-sink.js'
import { partitionS3, readS3 } from './s3-source.js'
import { VERSION } from './version.js'

export interface S3ProviderOptions {
  /** Use this client instead of creating one from the connection's params and credentials. */
  client?: S3Client
  /** Extra client configuration merged into the one built from params (not used with `client`). */
  clientConfig?: Partial<S3ClientConfig>
}

export function createS3ClientConfig(params: S3Params, credentials: S3Credentials): S3ClientConfig {
  const checksums = params.checksums ?? (params.endpoint ? 'when_required' : 'when_supported')
  const mode = checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'
  return {
    region: params.region,
    endpoint: params.endpoint,
    forcePathStyle: params.forcePathStyle ?? params.endpoint !== undefined,
    maxAttempts: params.maxAttempts,
    requestChecksumCalculation: mode,
    responseChecksumValidation: mode,
    requestHandler: {
      requestTimeout: params.requestTimeoutMs,
      connectionTimeout: Math.min(params.requestTimeoutMs, 10_000),
    },
    credentials:
      credentials.accessKeyId && credentials.secretAccessKey
        ? {
            accessKeyId: credentials.accessKeyId,
            secretAccessKey: credentials.secretAccessKey,
            sessionToken: credentials.sessionToken,
          }
        : undefined,
  }
}

/**
 * Amazon S3 and S3-compatible object stores. Reads list a bucket in key order and stream
 * each body; writes stream multipart uploads, idempotent by key.
 */
export function createS3Provider(options: S3ProviderOptions = {}) {
  return defineProvider({
    id: 's3',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Amazon S3',
    description: 'Objects in an S3 bucket (or an S3-compatible server) as blobs',
    credentials: S3Credentials,
    params: S3Params,
    source: {
      data: 'blob',
      stream: S3Stream,
      context: S3Context,
      incremental: true,
      ordering: 'object key (UTF-8 binary order)',
      partition: true,
    },
    sink: { data: 'blob', stream: S3SinkStream, idempotentBy: 'object key' },
    discover: true,
    classifyError: classifyS3Error,
    serverSideCopy: sameS3Place,
    async connect({ credentials, params }, { logger }) {
      const owned = options.client === undefined
      const client =
        options.client ??
        new S3Client({ ...createS3ClientConfig(params, credentials), ...options.clientConfig })
      const bucket = params.bucket
      const copier = new S3Copier(client, bucket, logger)
      return {
        async check() {
          try {
            await client.send(new HeadBucketCommand({ Bucket: bucket }))
          } catch (error) {
            const mapped = classifyS3Error(error)
            if (mapped?.kind === 'not_found') {
              throw new ProviderError({
                kind: 'not_found',
                message: `bucket ${JSON.stringify(bucket)} does not exist`,
                code: mapped.code,
                cause: error,
              })
            }
            if (mapped?.kind === 'auth') {
              throw new ProviderError({
                kind: 'auth',
                message: `access to bucket ${JSON.stringify(bucket)} was denied: check the access key, the secret and the bucket policy`,
                code: mapped.code,
                cause: error,
              })
            }
            throw mapped ?? error
          }
        },
        async discover({ signal }) {
          const streams: StreamInfo[] = [
            { name: `${bucket}/`, type: 'bucket', data: 'blob', stream: { prefix: '' } },
          ]
          let token: string | undefined
          do {
            const page = await client.send(
              new ListObjectsV2Command({
                Bucket: bucket,
                Delimiter: '/',
                ContinuationToken: token,
                MaxKeys: 1000,
              }),
              { abortSignal: signal },
            )
            for (const common of page.CommonPrefixes ?? []) {
              if (common.Prefix)
                streams.push({
                  name: `${bucket}/${common.Prefix}`,
                  type: 'prefix',
                  data: 'blob',
                  stream: { prefix: common.Prefix },
                })
            }
            token = page.IsTruncated ? page.NextContinuationToken : undefined
          } while (token)
          return streams
        },
        read: (stream, { after, signal }) => readS3(client, bucket, stream, after, signal),
        partition: (stream, { count, signal }) =>
          partitionS3(client, bucket, stream, count, signal),
        write: (stream, batch, options) => writeS3(client, bucket, stream, batch, options, copier),
        async close() {
          if (owned) client.destroy()
        },
      }
    },
  })
}

export const s3Provider = createS3Provider()
