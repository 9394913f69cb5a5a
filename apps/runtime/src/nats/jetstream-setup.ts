import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import type { KeyPair } from '@nats-io/nkeys'
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node'
import {
  CREDENTIAL_CLOCK_SKEW_MS,
  CREDENTIAL_NONCE_BUCKET,
  DEFAULT_CREDENTIAL_MAX_VALIDITY_MS,
  SUBJECT_PREFIX,
  type Subjects,
} from '@nvisy/protocol'
import { errorMessage, type Logger, ProviderError, toProviderError } from '@nvisy/provider-core'
import { KvCheckpointStore } from './checkpoint-store.js'
import type { DispatcherNaming, DispatcherOptions } from './dispatcher.js'
import { KvNonceStore, type NonceStore } from './nonce-store.js'
import {
  DEFAULT_PARTITION_ACK_WAIT_MS,
  DEFAULT_PARTITION_GRANT_VALIDITY_MS,
  ensurePartitionWork,
  PartitionWork,
} from './partition-work.js'

const DAY_MS = 86_400_000

/** The connection and the JetStream pieces a dispatcher works with. */
export interface JoinedNats {
  nc: NatsConnection
  js: JetStreamClient
  checkpoints: KvCheckpointStore
  nonces: NonceStore
  partitions: PartitionWork
}

/** Who this instance is: passed on to the partitioned runs' worker. */
export interface JoinIdentity {
  naming: DispatcherNaming
  subjects: Subjects
  keys: KeyPair
  publicKey: string
  instanceId: string
  log: Logger
}

/**
 * Connect to NATS, then create (or find) the run events stream, the checkpoint and nonce
 * buckets and the partitioned runs' work queue and bucket. A failure closes the connection
 * and throws a `ProviderError` (operation `connect`).
 */
export async function joinNats(
  options: DispatcherOptions,
  { naming, subjects, keys, publicKey, instanceId, log }: JoinIdentity,
): Promise<JoinedNats> {
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
    const js = jetstream(nc)
    const kv = await new Kvm(js).create(naming.checkpointBucket, { history: 1 })
    const checkpoints = new KvCheckpointStore(kv)
    // A nonce is kept until every blob that could hold it has expired.
    const nonceTtlMs =
      (options.credentialMaxValidityMs ?? DEFAULT_CREDENTIAL_MAX_VALIDITY_MS) +
      2 * CREDENTIAL_CLOCK_SKEW_MS
    const nonces = new KvNonceStore(
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
    const partitions = new PartitionWork({
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
    return { nc, js, checkpoints, nonces, partitions }
  } catch (error) {
    await nc.close().catch(() => {})
    throw toProviderError(error, { operation: 'connect' })
  }
}

/**
 * The protocol's name for the default subject prefix; under another prefix (an environment of
 * its own on a shared cluster) a name of that prefix, so two environments never share a work
 * queue.
 */
export function scoped(name: string, prefix: string): string {
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
