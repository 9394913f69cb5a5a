import { ProviderError } from '@nvisy/provider-core'
import { type Index, Pinecone } from '@pinecone-database/pinecone'
import { statusPreservingFetch } from './pinecone-errors.js'
import type { PineconeCredentials, PineconeParams } from './pinecone-schemas.js'

export interface IndexInfo {
  /** The data-plane URL. */
  host: string
  /** Dense dimension; undefined for a sparse index. */
  dimension: number | undefined
  name: string | undefined
}

export function createPineconeClient(
  credentials: PineconeCredentials,
  params: PineconeParams,
): Pinecone {
  return new Pinecone({
    apiKey: credentials.apiKey,
    ...(params.controlPlaneUrl ? { controllerHostUrl: params.controlPlaneUrl } : {}),
    maxRetries: params.maxRetries ?? 2,
    fetchApi: statusPreservingFetch() as never,
    sourceTag: 'nvisy',
  })
}

export function requireIndexOrHost(params: PineconeParams): void {
  if (params.index || params.host) return
  const message =
    'invalid pinecone params: /params/index: give the index name (or /params/host, the index host)'
  throw new ProviderError({
    kind: 'config',
    operation: 'connect',
    message,
    issues: [{ path: '/params/index', rule: 'required', message: 'index or host is required' }],
  })
}

function normalizeHost(host: string): string {
  return /^https?:\/\//.test(host) ? host : `https://${host}`
}

/**
 * Find the index's host and dimension: describeIndex for a name (the control plane), or
 * describeIndexStats on the host (the data plane) when only a host is given.
 */
export async function resolveIndex(client: Pinecone, params: PineconeParams): Promise<IndexInfo> {
  if (params.index) {
    const model = await client.describeIndex(params.index)
    const host = params.host ?? model.privateHost ?? model.host
    if (!host) {
      throw new ProviderError({
        kind: 'not_found',
        message: `Pinecone index ${params.index} has no host yet (state ${model.status?.state ?? 'unknown'})`,
      })
    }
    const dense = (model.vectorType ?? 'dense') === 'dense'
    return {
      host: normalizeHost(host),
      dimension: dense ? (model.dimension ?? undefined) : undefined,
      name: params.index,
    }
  }
  const host = normalizeHost(params.host!)
  const stats = await client.index({ host }).describeIndexStats()
  const sparse = (stats as { vectorType?: string }).vectorType === 'sparse'
  return { host, dimension: sparse ? undefined : (stats.dimension ?? undefined), name: undefined }
}

export type PineconeIndex = Index
