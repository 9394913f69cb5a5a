import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { S3Connection } from './s3-connection.js'
import { sameS3Place } from './s3-copy.js'
import { classifyS3Error } from './s3-errors.js'
import {
  S3ContextSchema,
  S3CredentialsSchema,
  S3ParamsSchema,
  S3SinkStreamSchema,
  S3StreamSchema,
} from './s3-schemas.js'
import { VERSION } from './version.js'

export interface S3ProviderOptions {
  /** Use this client instead of creating one from the connection's params and credentials. */
  client?: S3Client
  /** Extra client configuration merged into the one built from params (not used with `client`). */
  clientConfig?: Partial<S3ClientConfig>
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
    credentials: S3CredentialsSchema,
    params: S3ParamsSchema,
    source: {
      data: 'blob',
      stream: S3StreamSchema,
      context: S3ContextSchema,
      incremental: true,
      ordering: 'object key (UTF-8 binary order)',
      partition: true,
    },
    sink: { data: 'blob', stream: S3SinkStreamSchema, idempotentBy: 'object key' },
    discover: true,
    classifyError: classifyS3Error,
    serverSideCopy: sameS3Place,
    async connect(input, { logger }) {
      return S3Connection.open(input, { logger }, options)
    },
  })
}

export const s3Provider = createS3Provider()

export type S3Provider = typeof s3Provider
