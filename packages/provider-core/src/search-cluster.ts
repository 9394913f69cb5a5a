import { ProviderError } from './errors.js'

// ---------------------------------------------------------------------------------------
// The cluster health part of a search provider's `check` (Elasticsearch, OpenSearch). The
// version check before it differs between them and stays in each provider.
// ---------------------------------------------------------------------------------------

/** The request the health check makes, over one client. */
export interface SearchHealthBackend {
  /** The product name for messages: Elasticsearch, OpenSearch. */
  readonly product: string
  health(signal: AbortSignal): Promise<{ status: string }>
}

/**
 * Refuse a cluster whose health is red (a `transient` error: some primary shards are
 * unassigned). Credentials that may not read health (`classify` says `auth` and the status is
 * 403: an API key or user without the monitor privilege) pass: the version check stands.
 */
export async function checkSearchHealth(
  backend: SearchHealthBackend,
  classify: (error: unknown) => { kind: string } | undefined,
  signal: AbortSignal,
): Promise<void> {
  try {
    const { status } = await backend.health(signal)
    if (status === 'red')
      throw new ProviderError({
        kind: 'transient',
        operation: 'check',
        message: `${backend.product} cluster health is red: some primary shards are unassigned`,
      })
  } catch (error) {
    if (classify(error)?.kind === 'auth' && (error as any)?.meta?.statusCode === 403) return
    throw error
  }
}
