import {
  type Bucket,
  IdempotencyStrategy,
  Storage,
  type StorageOptions,
} from '@google-cloud/storage'
import {
  type Connection,
  type Data,
  type PartitionOptions,
  type PartitionPlan,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  type StreamInfo,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import { classifyGcsError } from './gcs-errors.js'
import type {
  GcsContext,
  GcsCredentials,
  GcsParams,
  GcsSinkStream,
  GcsStream,
} from './gcs-schemas.js'
import { writeGcs } from './gcs-sink.js'
import { partitionGcs, readGcs } from './gcs-source.js'

function parseServiceAccount(json: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    // JSON.parse's message quotes the input: never pass it on.
    parsed = undefined
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ProviderError({
      kind: 'config',
      message: 'credentials.serviceAccountJson is not a JSON object (a service account key file)',
    })
  }
  const key = parsed as Record<string, unknown>
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new ProviderError({
      kind: 'config',
      message:
        'credentials.serviceAccountJson needs client_email and private_key (a service account key file)',
    })
  }
  return key
}

export function createGcsStorageOptions(
  params: GcsParams,
  credentials: GcsCredentials,
): StorageOptions {
  const options: StorageOptions = {
    projectId: params.projectId,
    // Writes here are idempotent by name (the same bytes under the same name), so the
    // client may retry every request, uploads included.
    retryOptions: {
      maxRetries: params.maxRetries,
      autoRetry: params.maxRetries > 0,
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
    timeout: params.requestTimeoutMs,
  }
  if (params.apiEndpoint) {
    options.apiEndpoint = params.apiEndpoint.replace(/\/+$/, '')
    // With an endpoint override the client sends no credentials unless told to.
    options.useAuthWithCustomEndpoint = credentials.serviceAccountJson !== undefined
  }
  if (credentials.serviceAccountJson !== undefined) {
    const key = parseServiceAccount(credentials.serviceAccountJson)
    options.credentials = {
      client_email: key.client_email as string,
      private_key: key.private_key as string,
    }
    options.projectId ??= typeof key.project_id === 'string' ? key.project_id : undefined
  }
  return options
}

/**
 * A connection to one bucket: owns the Storage client (unless one was given) and hands
 * reading, partitioning and writing to gcs-source and gcs-sink.
 */
export class GcsConnection implements Connection<GcsStream, GcsContext, GcsSinkStream> {
  readonly bucket: Bucket

  constructor(
    readonly storage: Storage,
    readonly bucketName: string,
  ) {
    this.bucket = storage.bucket(bucketName)
  }

  /** Connect with a client built from these settings, or with `storage`. */
  static open(
    { credentials, params }: { credentials: GcsCredentials; params: GcsParams },
    storage?: Storage,
  ): GcsConnection {
    return new GcsConnection(
      storage ?? new Storage(createGcsStorageOptions(params, credentials)),
      params.bucket,
    )
  }

  async check(): Promise<void> {
    try {
      await this.bucket.getMetadata()
    } catch (error) {
      const mapped = classifyGcsError(error)
      if (mapped?.kind === 'not_found') {
        throw new ProviderError({
          kind: 'not_found',
          message: `bucket ${JSON.stringify(this.bucketName)} does not exist`,
          code: mapped.code,
          cause: error,
        })
      }
      throw mapped ?? error
    }
  }

  /** The bucket, and each top-level prefix (`delimiter: '/'`). */
  async discover(): Promise<StreamInfo[]> {
    const name = this.bucketName
    const streams: StreamInfo[] = [
      { name: `${name}/`, type: 'bucket', data: 'blob', stream: { prefix: '' } },
    ]
    let pageToken: string | undefined
    do {
      const [, next, response] = (await this.bucket.getFiles({
        delimiter: '/',
        autoPaginate: false,
        pageToken,
      })) as unknown as [unknown, { pageToken?: string } | null, { prefixes?: string[] }]
      for (const prefix of response?.prefixes ?? []) {
        streams.push({
          name: `${name}/${prefix}`,
          type: 'prefix',
          data: 'blob',
          stream: { prefix },
        })
      }
      pageToken = next?.pageToken
    } while (pageToken)
    return streams
  }

  read(
    stream: GcsStream,
    { after, signal }: ReadOptions<GcsContext>,
  ): AsyncIterable<ReadItem<GcsContext>> {
    return readGcs(this.bucket, stream, after, signal)
  }

  partition(
    stream: GcsStream,
    { count, signal }: PartitionOptions,
  ): Promise<PartitionPlan<GcsStream>> {
    return partitionGcs(this.bucket, stream, count, signal)
  }

  write(
    stream: GcsSinkStream,
    batch: readonly Data[],
    { signal }: WriteOptions,
  ): Promise<WriteResult> {
    return writeGcs(this.bucket, stream, batch, signal)
  }

  /** The Storage client holds no connection to end. */
  async close(): Promise<void> {}
}
