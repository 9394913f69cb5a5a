import type { Msg } from '@nats-io/transport-node'
import { CheckRequestSchema, DiscoverRequestSchema, ProvidersRequestSchema } from '@nvisy/protocol'
import {
  errorMessage,
  formatIssues,
  type Logger,
  type Provider,
  ProviderError,
} from '@nvisy/provider-core'
import type { ProviderRegistry } from '../executor/types.js'
import { type BoundCredentialsContext, openBound } from './bound-credentials.js'
import { connectionInput, credentialIssues } from './credentials.js'
import { LocalPathPolicy } from './local-paths.js'
import { parseRequest, RequestRejected, rejectInvalid } from './request-replies.js'

const DEFAULT_VERSION = '0.1.0'

/** What the catalog, check and discover requests need from the dispatcher's state. */
export interface ConnectionRequestsContext extends BoundCredentialsContext {
  options: BoundCredentialsContext['options'] & {
    registry: ProviderRegistry
    version?: string
    requestTimeoutMs?: number
    localPathRoots?: readonly string[]
  }
  publicKey: string
  log: Logger
}

/** The provider `id` of the registry, or a `not_found` refusal naming `path`. */
export function findProvider(registry: ProviderRegistry, id: string, path: string): Provider {
  const provider = registry.get(id)
  if (!provider) {
    throw new RequestRejected(
      'not_found',
      `provider ${JSON.stringify(id)} is not loaded in this runtime`,
      [{ path, rule: 'provider', message: `no provider ${JSON.stringify(id)} is loaded` }],
    )
  }
  return provider
}

/**
 * The catalog (`providers`), `check` and `discover` requests, and the local-path allowlist
 * every request (runs too) is held to.
 */
export class ConnectionRequests {
  readonly #c: ConnectionRequestsContext
  /** Aborted when the dispatcher closes: open checks and discovers stop. */
  readonly #stop: AbortSignal
  #localPaths: LocalPathPolicy | undefined

  constructor(context: ConnectionRequestsContext, stop: AbortSignal) {
    this.#c = context
    this.#stop = stop
  }

  async providers(msg: Msg) {
    parseRequest(ProvidersRequestSchema, msg, 'providers request')
    const { instanceId, publicKey, options } = this.#c
    return {
      runtime: { id: instanceId, version: options.version ?? DEFAULT_VERSION, publicKey },
      providers: options.registry.list().map((provider) => provider.describe()),
    }
  }

  async check(msg: Msg) {
    const started = performance.now()
    return this.#withConnection(msg, 'check', async (connection, signal) => {
      await connection.check({ signal })
      return {
        ok: true as const,
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      }
    })
  }

  async discover(msg: Msg) {
    return this.#withConnection(msg, 'discover', async (connection, signal) => ({
      streams: await connection.discover({ signal }),
    }))
  }

  /** Refuses the request (`config`, naming each field) when a local path is not allowed. */
  async confineLocalPaths(
    uses: { provider: Provider; params: unknown; at: string }[],
    what: string,
  ): Promise<void> {
    this.#localPaths ??= new LocalPathPolicy(this.#c.options.localPathRoots ?? [])
    const policy = this.#localPaths
    const issues = (
      await Promise.all(uses.map((use) => policy.issues(use.provider, use.params, use.at)))
    ).flat()
    if (issues.length > 0)
      throw new RequestRejected('config', `${what}: ${formatIssues(issues)}`, issues)
  }

  async #withConnection<T>(
    msg: Msg,
    what: 'check' | 'discover',
    use: (connection: Awaited<ReturnType<Provider['connect']>>, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const request = parseRequest(
      what === 'check' ? CheckRequestSchema : DiscoverRequestSchema,
      msg,
      `${what} request`,
    )
    const provider = findProvider(this.#c.options.registry, request.provider, '/provider')
    await this.confineLocalPaths(
      [{ provider, params: request.connection.params, at: '/connection/params' }],
      `${what} request`,
    )
    const where = `${provider.id} connection`
    const issues = credentialIssues(request.connection, this.#c.policy, '/connection')
    if (issues.length > 0) {
      throw new ProviderError({
        kind: 'config',
        message: `${where}: ${issues.map((i) => i.message).join('; ')}`,
        issues,
      })
    }
    if (request.connection.sealedCredentials !== undefined && request.requestId === undefined) {
      throw rejectInvalid(`${what} request`, [
        {
          path: '/requestId',
          rule: 'required',
          message: 'a request with sealedCredentials needs the requestId they are bound to',
        },
      ])
    }
    // Sealed credentials are opened, checked against this request and their nonce claimed
    // before anything connects: a refused blob is answered here, and nothing is sent.
    const opened = await openBound(
      this.#c,
      [
        {
          connection: request.connection,
          provider,
          scope: {
            operation: what,
            requestId: request.requestId ?? '',
            ...(request.connection.connectionId === undefined
              ? {}
              : { connectionId: request.connection.connectionId }),
          },
          where,
          path: '/connection/sealedCredentials',
        },
      ],
      `${what} ${request.requestId ?? ''}`,
    )
    const input = connectionInput(request.connection, opened[0])
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#c.options.requestTimeoutMs ?? 30_000),
      this.#stop,
    ])
    const logger = this.#c.log.child?.({ provider: provider.id, operation: what }) ?? this.#c.log
    const connection = await provider.connect(input, { signal, logger })
    try {
      return await use(connection, signal)
    } finally {
      await connection
        .close()
        .catch((error) =>
          logger.warn({ error: { message: errorMessage(error) } }, 'closing the connection failed'),
        )
    }
  }
}
