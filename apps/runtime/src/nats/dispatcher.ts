import { randomUUID } from 'node:crypto'
import type { JetStreamClient } from '@nats-io/jetstream'
import type { KeyPair } from '@nats-io/nkeys'
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node'
import {
  CHECKPOINT_BUCKET,
  CREDENTIAL_NONCE_BUCKET,
  createSubjects,
  PARTITION_WORK_CONSUMER,
  PARTITION_WORK_STREAM,
  PARTITIONED_RUNS_BUCKET,
  QUEUE_GROUP,
  RUN_EVENTS_STREAM,
  SUBJECT_PREFIX,
  type Subjects,
} from '@nvisy/protocol'
import {
  type Logger,
  ProviderError,
  silentLogger,
  type ValidationIssue,
} from '@nvisy/provider-core'
import type { ExecuteOptions, ProviderRegistry, RunSummary } from '../executor/types.js'
import type { KvCheckpointStore } from './checkpoint-store.js'
import { ConnectionRequests } from './connection-requests.js'
import { type CredentialPolicy, isCurvePublicKey, runtimeKeyPair } from './credentials.js'
import { joinNats, scoped } from './jetstream-setup.js'
import { secretSafeLogger } from './logging.js'
import type { NonceStore } from './nonce-store.js'
import type { PartitionWork } from './partition-work.js'
import { RequestReplies } from './request-replies.js'
import { abortError, Runs } from './runs.js'

// The dispatcher's jobs, one module each: jetstream-setup.ts (joining NATS, the stream and
// buckets), request-replies.ts (serving requests, error replies), connection-requests.ts
// (catalog, check, discover), runs.ts (runs.start, cancel, aborting and waiting for runs),
// bound-credentials.ts (opening sealed credentials, claiming their nonces). This file wires
// them together and owns the dispatcher's lifecycle (drain, close).

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

  const joined = await joinNats(options, { naming, subjects, keys, publicKey, instanceId, log })
  const { nc } = joined
  const dispatcher = new DispatcherState({
    options,
    ...joined,
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

/** What the dispatcher's parts share (each takes the part of it it needs). */
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
  readonly #requests: RequestReplies
  readonly #connections: ConnectionRequests
  readonly #runs: Runs
  readonly #stop = new AbortController()
  #drained: Promise<void> | undefined
  #closed: Promise<void> | undefined

  constructor(init: StateInit) {
    this.#o = init
    this.#requests = new RequestReplies(init)
    this.#connections = new ConnectionRequests(init, this.#stop.signal)
    this.#runs = new Runs(init, this.#requests, this.#connections)
    init.nc
      .closed()
      .then((error) => {
        if (!this.#runs.draining) {
          if (error)
            init.log.error(
              { error: { message: error.message } },
              'NATS connection closed with an error',
            )
          this.#runs.abortAll('connection closed')
        }
      })
      .catch(() => {})
  }

  activeRuns(): string[] {
    return [...new Set([...this.#runs.ids(), ...this.#o.partitions.activeRuns()])]
  }

  serve(): void {
    const { subjects } = this.#o
    const requests = this.#requests
    requests.serve(subjects.providers, (msg) => this.#connections.providers(msg))
    requests.serve(subjects.check, (msg) => this.#connections.check(msg))
    requests.serve(subjects.discover, (msg) => this.#connections.discover(msg))
    requests.serve(subjects.runsStart, (msg) => this.#runs.start(msg))
    this.#o.partitions.start()
  }

  drain(): Promise<void> {
    this.#drained ??= (async () => {
      const { log, nc, options } = this.#o
      this.#runs.draining = true
      log.info({ runs: this.activeRuns() }, 'draining: no new requests')
      this.#requests.stopServing()
      await this.#requests.settled()
      if ((options.drainGraceMs ?? 0) > 0) await this.#runs.waitFor(options.drainGraceMs!)
      this.#runs.abortAll('draining')
      // Partitions stop at a batch boundary, save their checkpoints and go back on the work queue.
      const [finished] = await Promise.all([
        this.#runs.waitFor(options.drainTimeoutMs ?? 30_000),
        this.#o.partitions.stop('draining', options.drainTimeoutMs ?? 30_000),
      ])
      if (!finished)
        log.warn({ runs: this.activeRuns() }, 'draining: runs still going after the timeout')
      await this.#requests.settled()
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close())
      this.#requests.close()
      log.info({}, 'drained')
    })()
    return this.#drained
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#runs.draining = true
      this.#stop.abort(abortError('closed'))
      this.#requests.stopServing()
      this.#runs.abortAll('closed')
      await Promise.all([this.#runs.waitFor(2_000), this.#o.partitions.stop('closed', 2_000)])
      if (!this.#o.nc.isClosed()) await this.#o.nc.close()
      this.#requests.close()
    })()
    return this.#closed
  }
}
