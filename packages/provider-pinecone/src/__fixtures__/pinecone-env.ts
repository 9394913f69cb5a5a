// Where the tests run: against a real deployment when NVISY_TEST_PINECONE_API_KEY and
// NVISY_TEST_PINECONE_INDEX are set (its control plane at NVISY_TEST_PINECONE_CONTROL_PLANE_URL,
// default Pinecone's own), else against the emulator from @nvisy/emulators, started here on
// a free port.
import { randomBytes } from 'node:crypto'
import { type PineconeEmulator, startPineconeEmulator } from '@nvisy/emulators'
import type { ConnectInput } from '@nvisy/provider-core'
import { type Index, Pinecone } from '@pinecone-database/pinecone'

export const REAL_API_KEY = process.env.NVISY_TEST_PINECONE_API_KEY
export const REAL_INDEX = process.env.NVISY_TEST_PINECONE_INDEX
export const REAL_CONTROL_PLANE_URL = process.env.NVISY_TEST_PINECONE_CONTROL_PLANE_URL || undefined
export const REAL = Boolean(REAL_API_KEY && REAL_INDEX)

export function randomSuffix(): string {
  return randomBytes(4).toString('hex')
}

export interface PineconeTestEnv {
  /** Provider input for the index `name`. */
  input(name?: string): ConnectInput
  admin: Pinecone
  emulator: PineconeEmulator | undefined
  apiKey: string
  /** The test index (the real one, or the emulator's `main`). */
  indexName: string
  dimension: number
  /** An SDK handle on a namespace of the index `name`. */
  index(namespace: string, name?: string): Promise<Index>
  /** Wait until the service shows what was written (the real service is eventually consistent). */
  settle(): Promise<void>
  close(): Promise<void>
}

export async function openTestEnv(
  extraIndexes: {
    name: string
    dimension?: number
    metric?: 'cosine' | 'euclidean' | 'dotproduct'
    vectorType?: 'dense' | 'sparse'
  }[] = [],
  mainDimension = 8,
): Promise<PineconeTestEnv> {
  if (REAL) {
    const admin = new Pinecone({
      apiKey: REAL_API_KEY!,
      maxRetries: 2,
      ...(REAL_CONTROL_PLANE_URL ? { controllerHostUrl: REAL_CONTROL_PLANE_URL } : {}),
    })
    const model = await admin.describeIndex(REAL_INDEX!)
    const hosts = new Map<string, string>()
    return {
      input: (name = REAL_INDEX!) => ({
        credentials: { apiKey: REAL_API_KEY! },
        params: {
          index: name,
          ...(REAL_CONTROL_PLANE_URL ? { controlPlaneUrl: REAL_CONTROL_PLANE_URL } : {}),
        },
      }),
      admin,
      emulator: undefined,
      apiKey: REAL_API_KEY!,
      indexName: REAL_INDEX!,
      dimension: model.dimension!,
      async index(namespace, name = REAL_INDEX!) {
        let host = hosts.get(name)
        if (!host) {
          host = (await admin.describeIndex(name)).host
          hosts.set(name, host)
        }
        return admin.index({ host, namespace })
      },
      settle: () => new Promise((resolve) => setTimeout(resolve, 5000)),
      close: async () => {},
    }
  }
  const apiKey = `emulator-${randomSuffix()}`
  const emulator = await startPineconeEmulator({
    apiKey,
    indexes: [{ name: 'main', dimension: mainDimension, metric: 'cosine' }, ...extraIndexes],
  })
  const admin = new Pinecone({ apiKey, controllerHostUrl: emulator.url, maxRetries: 0 })
  return {
    input: (name = 'main') => ({
      credentials: { apiKey },
      params: { index: name, controlPlaneUrl: emulator.url, maxRetries: 0 },
    }),
    admin,
    emulator,
    apiKey,
    indexName: 'main',
    dimension: mainDimension,
    index: async (namespace, name = 'main') =>
      admin.index({ host: emulator.hostOf(name), namespace }),
    settle: async () => {},
    close: () => emulator.close(),
  }
}

/** A deterministic non-zero vector for item `i`. */
export function vectorFor(i: number, dimension: number): number[] {
  return Array.from({ length: dimension }, (_, d) => Math.fround(Math.sin(i * 31 + d) + 1.25))
}

export function itemId(i: number): string {
  return `item-${String(i).padStart(7, '0')}`
}

/** Every id in a namespace, through list pagination. */
export async function listAll(index: Index): Promise<string[]> {
  const ids: string[] = []
  let token: string | undefined
  do {
    const page = await index.listPaginated({
      limit: 100,
      ...(token ? { paginationToken: token } : {}),
    })
    for (const item of page.vectors ?? []) if (item.id) ids.push(item.id)
    token = page.pagination?.next
  } while (token)
  return ids
}

/** deleteAll, ignoring a namespace that does not exist (the real service answers 404). */
export async function clearNamespace(index: Index): Promise<void> {
  try {
    await index.deleteAll()
  } catch (error) {
    if (
      (error as Error).name !== 'PineconeNotFoundError' &&
      !/404/.test(String((error as Error).message))
    )
      throw error
  }
}
