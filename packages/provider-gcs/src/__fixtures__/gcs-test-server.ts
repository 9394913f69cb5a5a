// Test-only helpers: the GCS endpoint the tests use (the local emulator started by the root
// global setup, or another through NVISY_TEST_GCS_*), and a bucket per test file.
// Against real Cloud Storage: NVISY_TEST_GCS_CREDENTIALS (a service account key file's
// content) and NVISY_TEST_GCS_PROJECT, with NVISY_TEST_GCS_ENDPOINT unset.
import { randomBytes } from 'node:crypto'
import { Storage } from '@google-cloud/storage'
import { serviceSkipReason } from '@nvisy/provider-testkit'

const realCredentials = process.env.NVISY_TEST_GCS_CREDENTIALS
/** The emulator, another endpoint, or (undefined) Google's own with real credentials. */
export const gcsEndpoint =
  process.env.NVISY_TEST_GCS_ENDPOINT ?? (realCredentials ? undefined : 'http://127.0.0.1:9199')
export const gcsProject = process.env.NVISY_TEST_GCS_PROJECT ?? 'demo-nvisy'

export function gcsInput(bucket: string, credentials: Record<string, unknown> = {}) {
  const given =
    Object.keys(credentials).length > 0 || !realCredentials
      ? credentials
      : { serviceAccountJson: realCredentials }
  return {
    credentials: given,
    params: { bucket, projectId: gcsProject, ...(gcsEndpoint ? { apiEndpoint: gcsEndpoint } : {}) },
  }
}

/** A well-formed key file whose private key is not a key: signing fails before any request. */
export function brokenServiceAccount(secret: string): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: gcsProject,
    private_key_id: 'test',
    private_key: `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`,
    client_email: 'nvisy-test@demo-nvisy.iam.gserviceaccount.com',
    client_id: '1',
    token_uri: 'http://127.0.0.1:1/token',
  })
}

export function testStorage(): Storage {
  if (!gcsEndpoint && realCredentials) {
    return new Storage({ projectId: gcsProject, credentials: JSON.parse(realCredentials) })
  }
  return new Storage({ projectId: gcsProject, apiEndpoint: gcsEndpoint })
}

export async function gcsSkipReason(): Promise<string | false> {
  if (!gcsEndpoint) return false
  return serviceSkipReason('GCS emulator', gcsEndpoint, async () => {
    const response = await fetch(gcsEndpoint, { signal: AbortSignal.timeout(3000) })
    await response.arrayBuffer()
    return true
  })
}

export function randomBucketName(label: string): string {
  return `nvisy-${label}-${randomBytes(4).toString('hex')}`
}

export async function listNames(
  storage: Storage,
  bucket: string,
  prefix?: string,
): Promise<string[]> {
  const [files] = await storage.bucket(bucket).getFiles({ prefix })
  return files.map((f) => f.name).sort()
}
