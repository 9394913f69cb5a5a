import {
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo as JsStreamInfo,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { type NodeConnectionOptions, connect as natsConnect } from '@nats-io/transport-node'
import {
  type Connection,
  type Data,
  defineProvider,
  type MessageData,
  ProviderError,
  type ReadItem,
  raceAbort,
  SPECIFICATION_VERSION,
  type StreamInfo,
} from '@nvisy/provider-core'
import { classifyNatsError } from './nats-errors.js'
import {
  DEFAULT_MAX_IN_FLIGHT,
  type NatsContext,
  NatsContextSchema,
  type NatsCredentials,
  NatsCredentialsSchema,
  type NatsParams,
  NatsParamsSchema,
  type NatsSinkSettings,
  NatsSinkStreamSchema,
  NatsStreamSchema,
  type NatsStreamSettings,
} from './nats-schemas.js'
import { PublishWindow, writeMessages } from './nats-sink.js'
import { readStream } from './nats-source.js'
import { VERSION } from './version.js'

export interface NatsProviderOptions {
  /**
   * An existing connection to use instead of connecting from params and credentials. It is
   * shared, not owned: `close()` leaves it open, and `servers`, `tls`, `name` and the
   * credentials are not used (they are still validated).
   */
  connection?: NatsConnection
  /** Extra client options merged over the ones built from params (owned connections only). */
  connectionOptions?: Partial<NodeConnectionOptions>
  /** Messages an ordered consumer buffers ahead of a read. Default 1024. */
  readPrefetch?: number
}

const DEFAULT_TIMEOUT_MS = 10_000

/** Client options from validated params and credentials. Exported for tests. */
export function buildConnectionOptions(
  params: NatsParams,
  credentials: NatsCredentials,
): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: params.servers,
    name: params.name ?? 'nvisy',
    timeout: params.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    // Measured: async stack traces cost about half the client's CPU on a publish loop.
    noAsyncTraces: true,
  }
  const tls = params.tls ?? 'off'
  if (tls === 'on') options.tls = {}
  else if (typeof tls === 'object') options.tls = { ca: tls.ca }
  if ('token' in credentials) options.token = credentials.token
  else if ('user' in credentials) {
    options.user = credentials.user
    options.pass = credentials.password
  } else if ('creds' in credentials) {
    options.authenticator = credsAuthenticator(new TextEncoder().encode(credentials.creds))
  }
  return options
}

function configError(message: string, path: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message,
    issues: [{ path, rule: 'required', message: 'is required' }],
  })
}

function describeStream(info: JsStreamInfo): StreamInfo {
  const subjects = info.config.subjects ?? []
  const described: StreamInfo = {
    name: info.config.name,
    type: 'stream',
    data: 'message',
    stream: { stream: info.config.name },
    description:
      `${info.config.description ? `${info.config.description}; ` : ''}` +
      `subjects: ${subjects.length > 0 ? subjects.join(', ') : '(none: sourced or mirrored)'}; ` +
      `${info.state.messages} messages, sequences ${info.state.first_seq}..${info.state.last_seq}`,
  }
  return described
}

/** A connection to one NATS server or cluster with JetStream. */
export class NatsProviderConnection
  implements Connection<NatsStreamSettings, NatsContext, NatsSinkSettings>
{
  readonly js: JetStreamClient
  private managerPromise: Promise<JetStreamManager> | undefined
  /** One publish window per window size, shared by the writes running at once on this connection. */
  private readonly windows = new Map<number, PublishWindow>()

  constructor(
    readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly params: NatsParams,
    private readonly readPrefetch: number | undefined,
  ) {
    this.js = jetstream(nc, { timeout: params.timeoutMs ?? DEFAULT_TIMEOUT_MS })
  }

  /** The JetStream manager, created on first use (its creation is a round trip). */
  manager(): Promise<JetStreamManager> {
    this.managerPromise ??= jetstreamManager(this.nc, {
      timeout: this.params.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      checkAPI: false,
    })
    return this.managerPromise
  }

  async check(): Promise<void> {
    await this.nc.flush()
    const jsm = await this.manager()
    await jsm.getAccountInfo()
    if (this.params.stream) await jsm.streams.info(this.params.stream)
  }

  async discover(): Promise<StreamInfo[]> {
    const jsm = await this.manager()
    const found: StreamInfo[] = []
    for await (const info of jsm.streams.list()) found.push(describeStream(info))
    found.sort((a, b) => a.name.localeCompare(b.name))
    return found
  }

  async *read(
    stream: NatsStreamSettings,
    options: { after?: NatsContext | undefined; signal: AbortSignal },
  ): AsyncGenerator<ReadItem<NatsContext>> {
    const name = stream.stream ?? this.params.stream
    if (!name)
      throw configError(
        'no stream to read: set `stream` in the stream settings or in params',
        '/stream/stream',
      )
    const jsm = await this.manager()
    yield* readStream({
      js: this.js,
      jsm,
      stream: name,
      subject: stream.subject ?? this.params.subject,
      after: options.after,
      signal: options.signal,
      prefetch: this.readPrefetch,
    })
  }

  write(stream: NatsSinkSettings, batch: readonly Data[], options: { signal: AbortSignal }) {
    const size = stream.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    let window = this.windows.get(size)
    if (!window) {
      window = new PublishWindow(size)
      this.windows.set(size, window)
    }
    return writeMessages({
      window,
      js: this.js,
      jsm: () => this.manager(),
      settings: stream,
      // The guard passes only items of the sink's data kind (message).
      batch: batch as readonly MessageData[],
      signal: options.signal,
    })
  }

  async close(): Promise<void> {
    if (this.owned && !this.nc.isClosed()) await this.nc.close()
  }
}

/** Create the NATS JetStream provider, optionally around an existing connection. */
export function createNatsProvider(options: NatsProviderOptions = {}) {
  return defineProvider({
    id: 'nats',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'NATS JetStream',
    description:
      'Read JetStream streams through ordered consumers; publish with Nats-Msg-Id dedupe',
    credentials: NatsCredentialsSchema,
    params: NatsParamsSchema,
    source: {
      data: 'message',
      stream: NatsStreamSchema,
      context: NatsContextSchema,
      incremental: true,
      ordering: 'stream sequence',
    },
    sink: {
      data: 'message',
      stream: NatsSinkStreamSchema,
      idempotentBy: 'Nats-Msg-Id (message id) within the stream duplicate window',
    },
    discover: true,
    classifyError: classifyNatsError,
    async connect({ credentials, params }, { signal }) {
      if (options.connection)
        return new NatsProviderConnection(options.connection, false, params, options.readPrefetch)
      const connecting = natsConnect({
        ...buildConnectionOptions(params, credentials),
        ...options.connectionOptions,
      })
      let nc: NatsConnection
      try {
        nc = await raceAbort(connecting, signal)
      } catch (error) {
        if (signal.aborted) connecting.then((late) => late.close()).catch(() => {})
        throw error
      }
      return new NatsProviderConnection(nc, true, params, options.readPrefetch)
    },
  })
}

/** The NATS JetStream provider with connections it opens and owns. */
export const natsProvider = createNatsProvider()
