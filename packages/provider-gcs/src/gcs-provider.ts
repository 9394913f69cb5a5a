import { IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage'
import {
  defineProvider,
  ProviderError,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import { classifyGcsError } from './gcs-errors.js'
import { GcsContext, GcsCredentials, GcsParams, GcsSinkStream, GcsStream } from './gcs-schemas.js'
import { writeGcs } from './gcs-sink.js'
import { partitionGcs, readGcs } from './gcs-source.js'
import { VERSION } from './version.js'

export interface GcsProviderOptions {
  /** Use this client instead of creating one from the connection's params and credentials. */
  storage?: Storage
}

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

/** Google Cloud Storage: objects as streamed blobs, resumable by name, idempotent by name. */
export function createGcsProvider(options: GcsProviderOptions = {}) {
  return defineProvider({
    id: 'gcs',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'Google Cloud Storage',
    description: 'Objects in a Cloud Storage bucket as blobs',
    credentials: GcsCredentials,
    params: GcsParams,
    source: {
      data: 'blob',
      stream: GcsStream,
      context: GcsContext,
      incremental: true,
      ordering: 'object name (UTF-8 binary order)',
      partition: true,
    },
    sink: { data: 'blob', stream: GcsSinkStream, idempotentBy: 'object name' },
    discover: true,
    classifyError: classifyGcsError,
    async connect({ credentials, params }) {
      const storage = options.storage ?? new Storage(createGcsStorageOptions(params, credentials))
      const bucket = storage.bucket(params.bucket)
      return {
        async check() {
          try {
            await bucket.getMetadata()
          } catch (error) {
            const mapped = classifyGcsError(error)
            if (mapped?.kind === 'not_found') {
              throw new ProviderError({
                kind: 'not_found',
                message: `bucket ${JSON.stringify(params.bucket)} does not exist`,
                code: mapped.code,
                cause: error,
              })
            }
            throw mapped ?? error
          }
        },
        async discover() {
          const streams: StreamInfo[] = [
            { name: `${params.bucket}/`, type: 'bucket', data: 'blob', stream: { prefix: '' } },
          ]
          let pageToken: string | undefined
          do {
            const [, next, response] = (await bucket.getFiles({
              delimiter: '/',
              autoPaginate: false,
              pageToken,
            })) as unknown as [unknown, { pageToken?: string } | null, { prefixes?: string[] }]
            for (const prefix of response?.prefixes ?? []) {
              streams.push({
                name: `${params.bucket}/${prefix}`,
                type: 'prefix',
                data: 'blob',
                stream: { prefix },
              })
            }
            pageToken = next?.pageToken
          } while (pageToken)
          return streams
        },
        read: (stream, { after, signal }) => readGcs(bucket, stream, after, signal),
        partition: (stream, { count, signal }) => partitionGcs(bucket, stream, count, signal),
        write: (stream, batch, { signal }) => writeGcs(bucket, stream, batch, signal),
        async close() {},
      }
    },
  })
}

export const gcsProvider = createGcsProvider()
