import type { S3ClientConfig } from '@aws-sdk/client-s3'
import {
  type Connection,
  type Data,
  type Logger,
  type PartitionOptions,
  type PartitionPlan,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  type StreamInfo,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import { S3Copier } from './s3-copy.js'
import { classifyS3Error } from './s3-errors.js'
import type { S3Context, S3Credentials, S3Params, S3SinkStream, S3Stream } from './s3-schemas.js'
import { HeadBucketCommand, ListObjectsV2Command, S3Client } from './s3-sdk.js'
import { writeS3 } from './s3-sink.js'
import { partitionS3, readS3 } from './s3-source.js'
import { PartBufferPool } from './s3-upload.js'

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
 * The SDK's logger for a client created here: its warnings and errors (such as "An error was
 * encountered in a non-retryable streaming request", which it writes to the console when it
 * has no logger) go to the connection's logger at debug; the error itself reaches the caller.
 * Its info and debug lines (one per request) are dropped.
 */
function sdkLogger(logger: Logger): NonNullable<S3ClientConfig['logger']> {
  const noop = () => {}
  const debug = (...content: unknown[]) =>
    logger.debug({ sdk: content.map((c) => (c instanceof Error ? c.message : c)) }, 'AWS SDK')
  return { trace: noop, debug: noop, info: noop, warn: debug, error: debug }
}

/**
 * A connection to one bucket: owns the S3 client (unless one was given) and hands reading,
 * partitioning and writing to s3-source and s3-sink.
 */
export class S3Connection implements Connection<S3Stream, S3Context, S3SinkStream> {
  readonly #copier: S3Copier
  /** The sink's part buffers, reused by every object this connection streams. */
  readonly #parts = new PartBufferPool()

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    /** Whether the client was created here (and is destroyed on close). */
    readonly owned: boolean,
    logger: Logger,
  ) {
    this.#copier = new S3Copier(client, bucket, logger)
  }

  /** Connect with a client built from these settings (and `clientConfig`), or with `client` (never destroyed here). */
  static open(
    { credentials, params }: { credentials: S3Credentials; params: S3Params },
    { logger }: { logger: Logger },
    options: {
      client?: S3Client | undefined
      clientConfig?: Partial<S3ClientConfig> | undefined
    } = {},
  ): S3Connection {
    if (options.client) return new S3Connection(options.client, params.bucket, false, logger)
    const client = new S3Client({
      ...createS3ClientConfig(params, credentials),
      logger: sdkLogger(logger),
      ...options.clientConfig,
    })
    return new S3Connection(client, params.bucket, true, logger)
  }

  async check(): Promise<void> {
    const bucket = this.bucket
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }))
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
  }

  /** The bucket, and each top-level prefix (`Delimiter: '/'`). */
  async discover({ signal }: { signal: AbortSignal }): Promise<StreamInfo[]> {
    const bucket = this.bucket
    const streams: StreamInfo[] = [
      { name: `${bucket}/`, type: 'bucket', data: 'blob', stream: { prefix: '' } },
    ]
    let token: string | undefined
    do {
      const page = await this.client.send(
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
  }

  read(
    stream: S3Stream,
    { after, signal }: ReadOptions<S3Context>,
  ): AsyncIterable<ReadItem<S3Context>> {
    return readS3(this.client, this.bucket, stream, after, signal)
  }

  partition(
    stream: S3Stream,
    { count, signal }: PartitionOptions,
  ): Promise<PartitionPlan<S3Stream>> {
    return partitionS3(this.client, this.bucket, stream, count, signal)
  }

  write(stream: S3SinkStream, batch: readonly Data[], options: WriteOptions): Promise<WriteResult> {
    return writeS3(this.client, this.bucket, stream, batch, options, this.#copier, this.#parts)
  }

  async close(): Promise<void> {
    this.#parts.clear()
    if (this.owned) this.client.destroy()
  }
}
