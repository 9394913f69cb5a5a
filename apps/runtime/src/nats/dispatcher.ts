import { randomUUID } from 'node:crypto'
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import type { KeyPair } from '@nats-io/nkeys'
import {
  type ConnectionOptions,
  connect,
  type Msg,
  type NatsConnection,
  nanos,
  type Subscription,
} from '@nats-io/transport-node'
import {
  AUTO_PARTITIONS,
  CancelRequestSchema,
  CHECKPOINT_BUCKET,
  CheckRequestSchema,
  type ConnectionSpec,
  CREDENTIAL_CLOCK_SKEW_MS,
  CREDENTIAL_NONCE_BUCKET,
  createSubjects,
  DEFAULT_CREDENTIAL_MAX_VALIDITY_MS,
  DiscoverRequestSchema,
  type ErrorReply,
  errorReply,
  PARTITION_WORK_CONSUMER,
  PARTITION_WORK_STREAM,
  PARTITIONED_RUNS_BUCKET,
  type Pipeline,
  type ProtocolErrorKind,
  ProvidersRequestSchema,
  parseMessage,
  QUEUE_GROUP,
  RUN_EVENTS_STREAM,
  type RunsStartRequest,
  RunsStartRequestSchema,
  SUBJECT_PREFIX,
  type Subjects,
} from '@nvisy/protocol'
import {
  errorMessage,
  formatIssues,
  type Logger,
  type Provider,
  ProviderError,
  type Static,
  silentLogger,
  type TSchema,
  toProviderError,
  type ValidationIssue,
} from '@nvisy/provider-core'
import { validatePipeline as defaultValidatePipeline } from '../executor/index.js'
import type { ExecuteOptions, ProviderRegistry, RunSummary } from '../executor/types.js'
import { KvCheckpointStore } from './checkpoint-store.js'
import {
  type CredentialPolicy,
  type CredentialScope,
  connectionInput,
  credentialIssues,
  expectedBinding,
  isCurvePublicKey,
  type OpenedCredentials,
  openSealedCredentials,
  runtimeKeyPair,
} from './credentials.js'
import { LocalPathPolicy } from './local-paths.js'
import { RefusalLog, secretSafeLogger } from './logging.js'
import { KvNonceStore, type NonceStore } from './nonce-store.js'
import {
  DEFAULT_PARTITION_ACK_WAIT_MS,
  DEFAULT_PARTITION_GRANT_VALIDITY_MS,
  ensurePartitionWork,
  PartitionWork,
  PlanRejected,
} from './partition-work.js'
import { RunEventPublisher } from './run-events.js'

/** Subject prefix, stream, bucket and queue group. Override only in tests: the defaults are the protocol's. */
export interface DispatcherNaming {
  prefix: string
  eventsStream: string
  checkpointBucket: string
  queueGroup: string
  /** KV bucket of opened sealed-credentials nonces (replay protection across the group). */
  nonceBucket?: string
  /** The work-queue stream of partitioned runs' work items. */
  workStream?: string
  /** Its durable consumer, shared by the group. */
  workConsumer?: string
  /** KV bucket of partitioned runs and how each partition ended. */
  runsBucket?: string
}

export interface DispatcherOptions {
  /** NATS server URLs. */
  servers: string | string[]
  registry: ProviderRegistry
  /** The pipeline executor (`executePipeline`), injected. */
  execute: (options: ExecuteOptions) => Promise<RunSummary>
  /** The xkey public key of the server allowed to seal credentials to this runtime. */
  serverPublicKey?: string
  /** This runtime's xkey seed (`SX...`); a new key pair is generated when absent. */
  runtimeSeed?: string
  /**
   * Longest validity accepted for a sealed credentials blob (`expiresAt - now`, plus one
   * minute of clock skew); also sets the nonce bucket's TTL when this instance creates it.
   * Default 15 minutes.
   */
  credentialMaxValidityMs?: number
  /** Development only: accept plain `connection.credentials`. */
  allowPlainCredentials?: boolean
  /** A pino-compatible logger; secret-named fields are always redacted. */
  logger?: Logger
  /** Extra NATS connection options (auth, tls, name...). */
  natsOptions?: Partial<ConnectionOptions>
  naming?: Partial<DispatcherNaming>
  /** Identifies this instance in replies and logs; a random id by default. */
  instanceId?: string
  /** The runtime version in the catalog reply. */
  version?: string
  /** Check the pipeline before a run is accepted; default the executor's validatePipeline. */
  validatePipeline?: (pipeline: unknown, registry: ProviderRegistry) => ValidationIssue[]
  /** How long run events are kept in the events stream when the dispatcher creates it. Default 7 days. */
  eventsMaxAgeMs?: number
  /** Time limit for one check or discover request. Default 30 s. */
  requestTimeoutMs?: number
  /** drain(): how long runs may keep going before they are aborted with reason `draining`. Default 0. */
  drainGraceMs?: number
  /** drain(): how long aborted runs get to finish their batches and write checkpoints. Default 30 s. */
  drainTimeoutMs?: number
  /** Passed to `execute` (tests lower them). */
  executeOptions?: Pick<ExecuteOptions, 'progressIntervalMs' | 'retryBaseDelayMs'>
  /**
   * Folders that local paths in requests (params marked `LocalPath()`, the fs provider's root)
   * must be inside, compared after resolving symlinks and `..` (local-paths.ts). Absent or
   * empty: every request with a local path is refused. `nvisy serve --fs-root`.
   */
  localPathRoots?: readonly string[]
  /** Partitions of partitioned runs this instance runs at once. Default 2. */
  partitionConcurrency?: number
  /**
   * How long a partition's work item may go without a sign of life before another instance
   * takes it (the work consumer's ack wait, set by the instance that creates it). Default 30 s;
   * a running partition signals every third of it.
   */
  partitionAckWaitMs?: number
  /** Validity of the credentials a partition's work item carries (sealed by the runtime to itself). Default 24 h. */
  partitionGrantValidityMs?: number
  /** How often a running partition looks for a cancel or a failure of another partition. Default 1 s. */
  partitionPollMs?: number
}

export interface Dispatcher {
  readonly instanceId: string
  /** This runtime's xkey public key: the server seals credentials to it. */
  readonly publicKey: string
  /** Run ids running on this instance now. */
  activeRuns(): string[]
  /** Stop taking requests, let runs stop at a batch boundary and checkpoint, then close. */
  drain(): Promise<void>
  /** Abort every run and close the connection now. */
  close(): Promise<void>
}

const DEFAULT_VERSION = '0.1.0'
const DAY_MS = 86_400_000
const encoder = new TextEncoder()

/** A request refused before any work: answered with an error reply naming each issue. */
class RequestRejected extends Error {
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
    readonly issues?: ValidationIssue[],
  ) {
    super(message)
  }
}

function rejectInvalid(what: string, issues: ValidationIssue[]): RequestRejected {
  return new RequestRejected('validation', `invalid ${what}: ${formatIssues(issues)}`, issues)
}

function prefixIssues(
  issues: ValidationIssue[] | undefined,
  prefix: string,
): ValidationIssue[] | undefined {
  return issues?.map((issue) =>
    /^\/(credentials|params|stream)(\/|$)/.test(issue.path)
      ? { ...issue, path: `${prefix}${issue.path}` }
      : issue,
  )
}

function abortError(reason: string): Error {
  const error = new Error(reason)
  error.name = 'AbortError'
  return error
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.())
}

interface ActiveRun {
  runId: string
  pipelineId: string
  controller: AbortController
  events: RunEventPublisher
  cancelSubscription: Subscription
  finished: boolean
  done: Promise<void>
}

/**
 * Join NATS and serve the runtime protocol: the catalog, check, discover, runs.start and
 * cancel, in the queue group `nvisy-runtime`, with run events on JetStream and checkpoints
 * in a KV bucket.
 */
export async function startDispatcher(options: DispatcherOptions): Promise<Dispatcher> {
  const prefix = options.naming?.prefix ?? SUBJECT_PREFIX
  const naming: DispatcherNaming = {
    prefix,
    eventsStream: options.naming?.eventsStream ?? RUN_EVENTS_STREAM,
    checkpointBucket: options.naming?.checkpointBucket ?? CHECKPOINT_BUCKET,
    queueGroup: options.naming?.queueGroup ?? QUEUE_GROUP,
    nonceBucket: options.naming?.nonceBucket ?? CREDENTIAL_NONCE_BUCKET,
    workStream: options.naming?.workStream ?? scoped(PARTITION_WORK_STREAM, prefix),
    workConsumer: options.naming?.workConsumer ?? PARTITION_WORK_CONSUMER,
    runsBucket: options.naming?.runsBucket ?? scoped(PARTITIONED_RUNS_BUCKET, prefix),
  }
  if (options.serverPublicKey !== undefined && !isCurvePublicKey(options.serverPublicKey)) {
    throw new ProviderError({
      kind: 'config',
      message: 'serverPublicKey must be an xkey public key: "X" followed by 55 base32 characters',
    })
  }
  const keys = runtimeKeyPair(options.runtimeSeed)
  const publicKey = keys.getPublicKey()
  const instanceId = options.instanceId ?? `runtime-${randomUUID()}`
  const logger = secretSafeLogger(options.logger ?? silentLogger)
  const log = logger.child?.({ instanceId }) ?? logger
  const subjects = createSubjects(naming.prefix)
  const policy: CredentialPolicy = {
    serverPublicKey: options.serverPublicKey,
    allowPlainCredentials: options.allowPlainCredentials === true,
  }

  let nc: NatsConnection
  try {
    nc = await connect({
      name: `nvisy-runtime ${instanceId}`,
      ...options.natsOptions,
      servers: options.servers,
      noAsyncTraces: true,
    })
  } catch (error) {
    throw connectError(error, options.servers)
  }
  let js: JetStreamClient
  let checkpoints: KvCheckpointStore
  let nonces: NonceStore
  let partitions: PartitionWork
  const ackWaitMs = options.partitionAckWaitMs ?? DEFAULT_PARTITION_ACK_WAIT_MS
  try {
    const jsm = await jetstreamManager(nc)
    await ensureEventsStream(
      jsm,
      naming.eventsStream,
      subjects,
      options.eventsMaxAgeMs ?? 7 * DAY_MS,
      log,
    )
    js = jetstream(nc)
    const kv = await new Kvm(js).create(naming.checkpointBucket, { history: 1 })
    checkpoints = new KvCheckpointStore(kv)
    // A nonce is kept until every blob that could hold it has expired.
    const nonceTtlMs =
      (options.credentialMaxValidityMs ?? DEFAULT_CREDENTIAL_MAX_VALIDITY_MS) +
      2 * CREDENTIAL_CLOCK_SKEW_MS
    nonces = new KvNonceStore(
      await new Kvm(js).create(naming.nonceBucket ?? CREDENTIAL_NONCE_BUCKET, {
        history: 1,
        ttl: nonceTtlMs,
      }),
    )
    const workNaming = {
      workStream: naming.workStream!,
      workConsumer: naming.workConsumer!,
      runsBucket: naming.runsBucket!,
      cancelQueue: `${naming.queueGroup}-partitioned`,
    }
    await ensurePartitionWork(jsm, subjects, workNaming, ackWaitMs, log)
    partitions = new PartitionWork({
      nc,
      js,
      jsm,
      runs: await new Kvm(js).create(workNaming.runsBucket, { history: 1 }),
      checkpoints,
      registry: options.registry,
      execute: options.execute,
      ...(options.executeOptions ? { executeOptions: options.executeOptions } : {}),
      keys,
      publicKey,
      instanceId,
      subjects,
      naming: workNaming,
      log,
      concurrency: Math.max(1, options.partitionConcurrency ?? 2),
      ackWaitMs,
      grantValidityMs: options.partitionGrantValidityMs ?? DEFAULT_PARTITION_GRANT_VALIDITY_MS,
      ...(options.partitionPollMs === undefined ? {} : { pollMs: options.partitionPollMs }),
    })
  } catch (error) {
    await nc.close().catch(() => {})
    throw toProviderError(error, { operation: 'connect' })
  }

  const dispatcher = new DispatcherState({
    options,
    nc,
    js,
    checkpoints,
    nonces,
    partitions,
    keys,
    publicKey,
    instanceId,
    log,
    subjects,
    naming,
    policy,
  })
  dispatcher.serve()
  await nc.flush()
  log.info(
    { publicKey, subjects: subjects.prefix, queue: naming.queueGroup },
    'nvisy runtime dispatcher ready',
  )
  return {
    instanceId,
    publicKey,
    activeRuns: () => dispatcher.activeRuns(),
    drain: () => dispatcher.drain(),
    close: () => dispatcher.close(),
  }
}

/**
 * The protocol's name for the default subject prefix; under another prefix (an environment of
 * its own on a shared cluster) a name of that prefix, so two environments never share a work
 * queue.
 */
function scoped(name: string, prefix: string): string {
  return prefix === SUBJECT_PREFIX ? name : `${name}_${prefix.replace(/[^A-Za-z0-9_-]/g, '_')}`
}

/** Server URLs without any user info (a `nats://user:password@host` URL holds a secret). */
function displayServers(servers: string | string[]): string {
  return (Array.isArray(servers) ? servers : [servers])
    .map((server) => server.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1'))
    .join(', ')
}

function connectError(error: unknown, servers: string | string[]): ProviderError {
  const name = (error as { name?: string }).name ?? ''
  const text = errorMessage(error)
  const auth = /authoriz|authentic|auth(entication)? (violation|expired|timeout)|permission/i.test(
    `${name} ${text}`,
  )
  return new ProviderError({
    kind: auth ? 'auth' : 'transient',
    operation: 'connect',
    message: `cannot join NATS at ${displayServers(servers)}: ${auth ? "the server refused the runtime's credentials" : 'connection failed'} (${text})`,
    cause: error,
  })
}

async function ensureEventsStream(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  name: string,
  subjects: Subjects,
  maxAgeMs: number,
  log: Logger,
): Promise<void> {
  try {
    const info = await jsm.streams.info(name)
    if (!info.config.subjects?.includes(subjects.eventsAll)) {
      log.warn(
        { stream: name, subjects: info.config.subjects },
        `stream ${name} exists without subject ${subjects.eventsAll}: run events will not be kept`,
      )
    }
    return
  } catch (error) {
    if (
      (error as { name?: string }).name !== 'StreamNotFoundError' &&
      !/not found/i.test(errorMessage(error))
    )
      throw error
  }
  try {
    await jsm.streams.add({
      name,
      subjects: [subjects.eventsAll],
      max_age: nanos(maxAgeMs),
      duplicate_window: nanos(Math.min(120_000, maxAgeMs)),
    })
  } catch (error) {
    // Another instance created it at the same time.
    await jsm.streams.info(name).catch(() => {
      throw error
    })
  }
}

interface StateInit {
  options: DispatcherOptions
  nc: NatsConnection
  js: JetStreamClient
  checkpoints: KvCheckpointStore
  nonces: NonceStore
  partitions: PartitionWork
  keys: KeyPair
  publicKey: string
  instanceId: string
  log: Logger
  subjects: Subjects
  naming: DispatcherNaming
  policy: CredentialPolicy
}

class DispatcherState {
  readonly #o: StateInit
  readonly #runs = new Map<string, ActiveRun>()
  readonly #handlers = new Set<Promise<void>>()
  readonly #requestSubscriptions: Subscription[] = []
  readonly #stop = new AbortController()
  #draining = false
  #drained: Promise<void> | undefined
  #closed: Promise<void> | undefined

  constructor(init: StateInit) {
    this.#o = init
    init.nc
      .closed()
      .then((error) => {
        if (!this.#draining) {
          if (error)
            init.log.error(
              { error: { message: error.message } },
              'NATS connection closed with an error',
            )
          this.#abortAll('connection closed')
        }
      })
      .catch(() => {})
  }

  activeRuns(): string[] {
    return [...new Set([...this.#runs.keys(), ...this.#o.partitions.activeRuns()])]
  }

  serve(): void {
    const { subjects } = this.#o
    this.#serveRequests(subjects.providers, (msg) => this.#providers(msg))
    this.#serveRequests(subjects.check, (msg) => this.#check(msg))
    this.#serveRequests(subjects.discover, (msg) => this.#discover(msg))
    this.#serveRequests(subjects.runsStart, (msg) => this.#startRun(msg))
    this.#o.partitions.start()
  }

  #serveRequests(subject: string, handler: (msg: Msg) => Promise<unknown>): void {
    const subscription = this.#o.nc.subscribe(subject, {
      queue: this.#o.naming.queueGroup,
      callback: (error, msg) => {
        if (error) {
          this.#o.log.error({ subject, error: { message: error.message } }, 'subscription error')
          return
        }
        this.#track(this.#answer(subject, msg, handler))
      },
    })
    this.#requestSubscriptions.push(subscription)
  }

  #track(promise: Promise<void>): void {
    this.#handlers.add(promise)
    promise.finally(() => this.#handlers.delete(promise)).catch(() => {})
  }

  /** Run a handler and reply; whatever it throws becomes an error reply, never a crash. */
  async #answer(subject: string, msg: Msg, handler: (msg: Msg) => Promise<unknown>): Promise<void> {
    let reply: unknown
    try {
      reply = await handler(msg)
    } catch (error) {
      reply = this.#errorReply(subject, error)
    }
    if (!msg.reply) return
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)))
    } catch (error) {
      this.#o.log.warn(
        { subject, error: { message: errorMessage(error) } },
        'could not send a reply',
      )
    }
  }

  #refusals: RefusalLog | undefined

  #errorReply(subject: string, error: unknown): ErrorReply {
    const log = this.#o.log
    // Refusals are rate-limited (logging.ts): a flood of bad messages costs a few lines.
    this.#refusals ??= new RefusalLog(log)
    if (error instanceof RequestRejected) {
      this.#refusals.refused(
        subject,
        { kind: error.kind, issues: error.issues },
        `request refused: ${error.message}`,
      )
      return errorReply(error.kind, error.message, error.issues)
    }
    if (ProviderError.isInstance(error)) {
      const { cursor: _cursor, ...serialized } = error.toJSON()
      const issues = prefixIssues(serialized.issues, '/connection')
      if (issues) serialized.issues = issues
      this.#refusals.refused(subject, { error: serialized }, `request failed: ${error.message}`)
      return { error: serialized }
    }
    log.error(
      { subject, error: { name: (error as Error)?.name, message: errorMessage(error) } },
      'request handler failed',
    )
    return errorReply(
      'internal',
      `the runtime failed to handle ${subject}; see its logs (instance ${this.#o.instanceId})`,
    )
  }

  #localPaths: LocalPathPolicy | undefined

  /** Refuses the request (`config`, naming each field) when a local path is not allowed. */
  async #confineLocalPaths(
    uses: { provider: Provider; params: unknown; at: string }[],
    what: string,
  ): Promise<void> {
    this.#localPaths ??= new LocalPathPolicy(this.#o.options.localPathRoots ?? [])
    const policy = this.#localPaths
    const issues = (
      await Promise.all(uses.map((use) => policy.issues(use.provider, use.params, use.at)))
    ).flat()
    if (issues.length > 0)
      throw new RequestRejected('config', `${what}: ${formatIssues(issues)}`, issues)
  }

  #provider(id: string, path: string): Provider {
    const provider = this.#o.options.registry.get(id)
    if (!provider) {
      throw new RequestRejected(
        'not_found',
        `provider ${JSON.stringify(id)} is not loaded in this runtime`,
        [{ path, rule: 'provider', message: `no provider ${JSON.stringify(id)} is loaded` }],
      )
    }
    return provider
  }

  #parse<T extends TSchema>(schema: T, msg: Msg, what: string): Static<T> {
    const parsed = parseMessage(schema, msg.data)
    if (!parsed.ok) throw rejectInvalid(what, parsed.issues)
    return parsed.value
  }

  async #providers(msg: Msg) {
    this.#parse(ProvidersRequestSchema, msg, 'providers request')
    const { instanceId, publicKey, options } = this.#o
    return {
      runtime: { id: instanceId, version: options.version ?? DEFAULT_VERSION, publicKey },
      providers: options.registry.list().map((provider) => provider.describe()),
    }
  }

  async #withConnection<T>(
    msg: Msg,
    what: 'check' | 'discover',
    use: (connection: Awaited<ReturnType<Provider['connect']>>, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const request = this.#parse(
      what === 'check' ? CheckRequestSchema : DiscoverRequestSchema,
      msg,
      `${what} request`,
    )
    const provider = this.#provider(request.provider, '/provider')
    await this.#confineLocalPaths(
      [{ provider, params: request.connection.params, at: '/connection/params' }],
      `${what} request`,
    )
    const where = `${provider.id} connection`
    const issues = credentialIssues(request.connection, this.#o.policy, '/connection')
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
    const opened = await this.#openBound(
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
      AbortSignal.timeout(this.#o.options.requestTimeoutMs ?? 30_000),
      this.#stop.signal,
    ])
    const logger = this.#o.log.child?.({ provider: provider.id, operation: what }) ?? this.#o.log
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

  async #check(msg: Msg) {
    const started = performance.now()
    return this.#withConnection(msg, 'check', async (connection, signal) => {
      await connection.check({ signal })
      return {
        ok: true as const,
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      }
    })
  }

  async #discover(msg: Msg) {
    return this.#withConnection(msg, 'discover', async (connection, signal) => ({
      streams: await connection.discover({ signal }),
    }))
  }

  async #startRun(msg: Msg) {
    if (this.#draining) {
      throw new RequestRejected(
        'transient',
        `runtime instance ${this.#o.instanceId} is draining; send the run again`,
      )
    }
    const request: RunsStartRequest = this.#parse(RunsStartRequestSchema, msg, 'runs.start request')
    const { runId, pipeline } = request
    if (this.#runs.has(runId)) {
      throw new RequestRejected('validation', `run ${runId} is already running on this instance`, [
        { path: '/runId', rule: 'unique', message: 'a run with this id is already running' },
      ])
    }
    const validate = this.#o.options.validatePipeline ?? defaultValidatePipeline
    const issues: ValidationIssue[] = [
      ...validate(structuredClone(pipeline), this.#o.options.registry).map((issue) => ({
        ...issue,
        path: `/pipeline${issue.path === '/' ? '' : issue.path}`,
      })),
      ...pipeline.nodes.flatMap((node, index) =>
        credentialIssues(node.connection, this.#o.policy, `/pipeline/nodes/${index}/connection`),
      ),
    ]
    if (issues.length > 0) throw rejectInvalid(`pipeline ${pipeline.id}`, issues)
    await this.#confineLocalPaths(
      pipeline.nodes.map((node, index) => ({
        provider: this.#provider(node.provider, `/pipeline/nodes/${index}/provider`),
        params: node.connection.params,
        at: `/pipeline/nodes/${index}/connection/params`,
      })),
      `pipeline ${pipeline.id}`,
    )
    // Every sealed blob is opened and checked against this run and node before the run is
    // accepted (a refusal is the reply), and held for the run: nothing is opened later.
    const opened = await this.#openBound(
      pipeline.nodes.map((node, index) => ({
        connection: node.connection,
        provider: this.#provider(node.provider, `/pipeline/nodes/${index}/provider`),
        scope: { operation: 'run' as const, runId, nodeId: node.id },
        where: `node ${node.id} (${node.provider})`,
        path: `/pipeline/nodes/${index}/connection/sealedCredentials`,
      })),
      `run ${runId}`,
    )
    const credentials = new Map(pipeline.nodes.map((node, index) => [node.id, opened[index]]))
    if (request.partitions !== undefined) {
      const runLog = this.#o.log.child?.({ runId, pipelineId: pipeline.id }) ?? this.#o.log
      const planned = await this.#o.partitions
        .plan(runId, pipeline, request.resume ?? true, request.partitions, credentials, runLog)
        .catch((error) => {
          if (error instanceof PlanRejected)
            throw new RequestRejected('validation', error.message, error.issues)
          throw error
        })
      if ('unsplittable' in planned) {
        runLog.warn({ reason: planned.unsplittable }, planned.unsplittable)
        await this.#launch(runId, pipeline, request.resume ?? true, credentials)
        const requested = request.partitions === 'auto' ? AUTO_PARTITIONS : request.partitions
        return {
          accepted: true as const,
          runId,
          instanceId: this.#o.instanceId,
          plan: { requested, count: 1, pending: 1, reason: planned.unsplittable, resumed: false },
        }
      }
      return { accepted: true as const, runId, instanceId: this.#o.instanceId, plan: planned }
    }
    await this.#launch(runId, pipeline, request.resume ?? true, credentials)
    return { accepted: true as const, runId, instanceId: this.#o.instanceId }
  }

  /**
   * Open each sealed blob, check its binding (use, provider, destination params, expiry),
   * then claim every nonce in the group's nonce bucket. All are checked before any nonce
   * is claimed; any refusal throws an `auth` error for the reply, naming the blob's path.
   */
  async #openBound(
    uses: {
      connection: ConnectionSpec
      provider: Provider
      scope: CredentialScope
      where: string
      path: string
    }[],
    use: string,
  ): Promise<(OpenedCredentials | undefined)[]> {
    const { keys, policy, options, nonces, instanceId } = this.#o
    const opened = uses.map(({ connection, provider, scope, where, path }) =>
      connection.sealedCredentials === undefined
        ? undefined
        : openSealedCredentials(
            keys,
            policy.serverPublicKey,
            connection.sealedCredentials,
            expectedBinding(scope, {
              provider: provider.id,
              paramsSchema: provider.definition.params,
              params: connection.params,
            }),
            where,
            path,
            { maxValidityMs: options.credentialMaxValidityMs },
          ),
    )
    for (const [index, entry] of opened.entries()) {
      if (entry === undefined) continue
      const { where, path } = uses[index]!
      const duplicate = opened.findIndex((other) => other?.binding.nonce === entry.binding.nonce)
      if (duplicate !== index || !(await nonces.claim(entry.binding.nonce, { use, instanceId }))) {
        const message =
          'they were opened before (replay): every sealed blob is used once; the server must seal new credentials for each run or request'
        throw new ProviderError({
          kind: 'auth',
          message: `${where}: sealed credentials refused: ${message}`,
          issues: [{ path, rule: 'replay', message }],
        })
      }
    }
    return opened
  }

  async #launch(
    runId: string,
    pipeline: Pipeline,
    resume: boolean,
    opened: Map<string, OpenedCredentials | undefined>,
  ): Promise<void> {
    const { nc, js, subjects, log, options, checkpoints } = this.#o
    const runLog = log.child?.({ runId, pipelineId: pipeline.id }) ?? log
    const controller = new AbortController()
    const events = new RunEventPublisher(
      js,
      subjects.runEvents(runId),
      { runId, pipelineId: pipeline.id },
      runLog,
    )
    const run: ActiveRun = {
      runId,
      pipelineId: pipeline.id,
      controller,
      events,
      finished: false,
      done: Promise.resolve(),
      cancelSubscription: nc.subscribe(subjects.runCancel(runId), {
        callback: (error, msg) => {
          if (error) return
          this.#track(this.#answer(subjects.runCancel(runId), msg, (m) => this.#cancel(run, m)))
        },
      }),
    }
    this.#runs.set(runId, run)
    try {
      // The cancel subscription is registered with the server before the run is accepted.
      await nc.flush()
    } catch (error) {
      this.#runs.delete(runId)
      run.cancelSubscription.unsubscribe()
      throw error
    }
    runLog.info({ nodes: pipeline.nodes.length, resume }, 'run accepted')
    run.done = (async () => {
      let summary: RunSummary | undefined
      try {
        summary = await options.execute({
          runId,
          pipeline,
          registry: options.registry,
          resolveConnection: async (node) => connectionInput(node.connection, opened.get(node.id)),
          checkpoints,
          onEvent: (event) => events.publish(event),
          signal: controller.signal,
          resume,
          logger: runLog,
          ...options.executeOptions,
        })
        if (!events.terminal) {
          // The executor reports its end itself; this only covers one that did not.
          if (summary.status === 'completed')
            await events.publish({ type: 'completed', stats: summary.stats })
          else if (summary.status === 'partial')
            await events.publish({ type: 'partial', stats: summary.stats })
          else if (summary.status === 'cancelled')
            await events.publish({
              type: 'cancelled',
              reason: reasonOf(controller.signal),
              checkpoints: summary.checkpoints,
            })
          else
            await events.publish({
              type: 'failed',
              error: summary.error ?? { kind: 'internal', message: 'the run failed' },
            })
        }
        runLog.info({ status: summary.status, stats: summary.stats }, `run ${summary.status}`)
      } catch (error) {
        const failure = toProviderError(error, { operation: 'run' })
        runLog.error({ error: failure.toJSON() }, 'run failed')
        if (!events.terminal) await events.publish({ type: 'failed', error: failure.toJSON() })
      } finally {
        run.finished = true
        await events.idle()
        await run.cancelSubscription.drain().catch(() => {})
        this.#runs.delete(runId)
      }
    })()
  }

  async #cancel(run: ActiveRun, msg: Msg) {
    const request = this.#parse(CancelRequestSchema, msg, 'cancel request')
    if (run.finished) {
      throw new RequestRejected('not_found', `run ${run.runId} has already finished`)
    }
    const reason = request.reason ?? 'cancelled'
    this.#o.log.info({ runId: run.runId, reason }, 'run cancel requested')
    if (!run.controller.signal.aborted) run.controller.abort(abortError(reason))
    return { cancelled: true as const }
  }

  #abortAll(reason: string): void {
    for (const run of this.#runs.values()) {
      if (!run.controller.signal.aborted) run.controller.abort(abortError(reason))
    }
  }

  async #waitForRuns(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.#runs.values()].map((run) => run.done)).then(() => true)
    return Promise.race([all, sleep(timeoutMs).then(() => false)])
  }

  drain(): Promise<void> {
    this.#drained ??= (async () => {
      const { log, nc, options } = this.#o
      this.#draining = true
      log.info({ runs: this.activeRuns() }, 'draining: no new requests')
      for (const subscription of this.#requestSubscriptions) subscription.unsubscribe()
      await Promise.allSettled([...this.#handlers])
      if ((options.drainGraceMs ?? 0) > 0) await this.#waitForRuns(options.drainGraceMs!)
      this.#abortAll('draining')
      // Partitions stop at a batch boundary, save their checkpoints and go back on the work queue.
      const [finished] = await Promise.all([
        this.#waitForRuns(options.drainTimeoutMs ?? 30_000),
        this.#o.partitions.stop('draining', options.drainTimeoutMs ?? 30_000),
      ])
      if (!finished)
        log.warn({ runs: this.activeRuns() }, 'draining: runs still going after the timeout')
      await Promise.allSettled([...this.#handlers])
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close())
      this.#refusals?.close()
      log.info({}, 'drained')
    })()
    return this.#drained
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#draining = true
      this.#stop.abort(abortError('closed'))
      for (const subscription of this.#requestSubscriptions) subscription.unsubscribe()
      this.#abortAll('closed')
      await Promise.all([this.#waitForRuns(2_000), this.#o.partitions.stop('closed', 2_000)])
      if (!this.#o.nc.isClosed()) await this.#o.nc.close()
      this.#refusals?.close()
    })()
    return this.#closed
  }
}

function reasonOf(signal: AbortSignal): string | undefined {
  if (!signal.aborted) return undefined
  const reason = signal.reason
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : undefined
}
