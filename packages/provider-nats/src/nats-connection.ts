import {
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo as JsStreamInfo,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { credsAuthenticator, type NatsConnection as NatsClient } from '@nats-io/nats-core'
import { type NodeConnectionOptions, connect as natsConnect } from '@nats-io/transport-node'
import {
  type Connection,
  type Data,
  type MessageData,
  ProviderError,
  type ReadItem,
  raceAbort,
  type StreamInfo,
  tlsConnectOptions,
} from '@nvisy/provider-core'
import {
  DEFAULT_MAX_IN_FLIGHT,
  type NatsContext,
  type NatsCredentials,
  type NatsParams,
  type NatsSinkStream,
  type NatsStream,
} from './nats-schemas.js'
import { PublishWindow, writeMessages } from './nats-sink.js'
import { readStream } from './nats-source.js'

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
  else if (typeof tls === 'object' && 'mode' in tls) {
    // The shared shape: off, require (encrypted, certificate not checked) or verify.
    const shared = tlsConnectOptions(tls)
    if (shared) options.tls = shared
  } else if (typeof tls === 'object' && tls.ca !== undefined) options.tls = { ca: tls.ca }
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
export class NatsConnection implements Connection<NatsStream, NatsContext, NatsSinkStream> {
  readonly js: JetStreamClient
  private managerPromise: Promise<JetStreamManager> | undefined
  /** One publish window per window size, shared by the writes running at once on this connection. */
  private readonly windows = new Map<number, PublishWindow>()

  constructor(
    readonly nc: NatsClient,
    private readonly owned: boolean,
    private readonly params: NatsParams,
    private readonly readPrefetch: number | undefined,
  ) {
    this.js = jetstream(nc, { timeout: params.timeoutMs ?? DEFAULT_TIMEOUT_MS })
  }

  /**
   * Connect from validated credentials and params (`connectionOptions` merged over the options
   * built from them). A connection that completes after an abort is closed.
   */
  static async open(
    credentials: NatsCredentials,
    params: NatsParams,
    signal: AbortSignal,
    options: {
      connectionOptions?: Partial<NodeConnectionOptions> | undefined
      readPrefetch?: number | undefined
    } = {},
  ): Promise<NatsConnection> {
    const connecting = natsConnect({
      ...buildConnectionOptions(params, credentials),
      ...options.connectionOptions,
    })
    let nc: NatsClient
    try {
      nc = await raceAbort(connecting, signal)
    } catch (error) {
      if (signal.aborted) connecting.then((late) => late.close()).catch(() => {})
      throw error
    }
    return new NatsConnection(nc, true, params, options.readPrefetch)
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
    stream: NatsStream,
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

  write(stream: NatsSinkStream, batch: readonly Data[], options: { signal: AbortSignal }) {
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

/** @deprecated use NatsConnection */
export const NatsProviderConnection = NatsConnection
/** @deprecated use NatsConnection */
export type NatsProviderConnection = NatsConnection
