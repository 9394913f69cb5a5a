import { createRequire } from 'node:module'
import type * as ClientS3 from '@aws-sdk/client-s3'

/*
 * The AWS SDK's S3 client, loaded with `require`. The package is CommonJS (one 270 kB bundle
 * and the @smithy packages it requires); imported from ESM, Node first scans the bundle for
 * its export names (cjs-module-lexer) and wraps it, which cost 60-100 ms of every `nvisy`
 * start that loads this provider (2026-12-07, Node 20). `require` returns the same module
 * object without that scan. Types come from the package itself (`import type`).
 */
const sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof ClientS3

export const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} = sdk
export type S3Client = ClientS3.S3Client
