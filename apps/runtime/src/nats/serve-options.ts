// How `nvisy serve` joins NATS: authentication and TLS from the environment (secrets) and
// flags (file paths), and the subject namespace. Kept apart from the CLI so each rule is
// unit-tested; nothing here ever puts a secret value into an error message.
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { type ConnectionOptions, credsAuthenticator } from '@nats-io/transport-node'
import { ProviderError } from '@nvisy/provider-core'
import type { DispatcherNaming } from './dispatcher.js'

/** The environment variables `nvisy serve` reads (secret ones are marked). */
export const SERVE_ENV = {
  url: 'NVISY_NATS_URL',
  /** secret */
  token: 'NVISY_NATS_TOKEN',
  user: 'NVISY_NATS_USER',
  /** secret */
  password: 'NVISY_NATS_PASSWORD',
  credsFile: 'NVISY_NATS_CREDS_FILE',
  tlsCaFile: 'NVISY_NATS_TLS_CA_FILE',
  tlsCertFile: 'NVISY_NATS_TLS_CERT_FILE',
  tlsKeyFile: 'NVISY_NATS_TLS_KEY_FILE',
  subjectPrefix: 'NVISY_NATS_SUBJECT_PREFIX',
  eventsStream: 'NVISY_NATS_EVENTS_STREAM',
  checkpointBucket: 'NVISY_NATS_CHECKPOINT_BUCKET',
  queueGroup: 'NVISY_NATS_QUEUE_GROUP',
  nonceBucket: 'NVISY_NATS_NONCE_BUCKET',
  workStream: 'NVISY_NATS_WORK_STREAM',
  runsBucket: 'NVISY_NATS_RUNS_BUCKET',
  partitionConcurrency: 'NVISY_PARTITION_CONCURRENCY',
  partitionAckWait: 'NVISY_PARTITION_ACK_WAIT',
  credentialMaxValidity: 'NVISY_CREDENTIAL_MAX_VALIDITY',
} as const

export interface ServeFlags {
  'nats-creds'?: string
  'nats-tls-ca'?: string
  'nats-tls-cert'?: string
  'nats-tls-key'?: string
  'subject-prefix'?: string
  'events-stream'?: string
  'checkpoint-bucket'?: string
  'queue-group'?: string
  'nonce-bucket'?: string
  'work-stream'?: string
  'runs-bucket'?: string
  'credential-max-validity'?: string
  'partition-concurrency'?: string
  'partition-ack-wait'?: string
}

function config(message: string): ProviderError {
  return new ProviderError({ kind: 'config', operation: 'connect', message })
}

function nonEmpty(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

async function readNamedFile(path: string, what: string, cwd: string): Promise<Uint8Array> {
  try {
    return await readFile(resolve(cwd, path))
  } catch (error) {
    // The path is not a secret; the file's content would be, and is never quoted.
    throw config(
      `${what} ${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
}

/**
 * NATS connection options for the dispatcher: at most one of a token, a user and password,
 * or a creds file (JWT + nkey seed, as `nsc` writes them); TLS when a CA, a client
 * certificate or a `tls://` URL asks for it.
 */
export async function natsConnectionOptions(
  env: NodeJS.ProcessEnv,
  flags: ServeFlags,
  cwd: string,
): Promise<Partial<ConnectionOptions>> {
  const token = nonEmpty(env, SERVE_ENV.token)
  const user = nonEmpty(env, SERVE_ENV.user)
  const password = nonEmpty(env, SERVE_ENV.password)
  const credsFile = flags['nats-creds'] ?? nonEmpty(env, SERVE_ENV.credsFile)
  const methods = [
    token !== undefined && SERVE_ENV.token,
    (user !== undefined || password !== undefined) && `${SERVE_ENV.user}/${SERVE_ENV.password}`,
    credsFile !== undefined && `--nats-creds (${SERVE_ENV.credsFile})`,
  ].filter((m): m is string => typeof m === 'string')
  if (methods.length > 1) throw config(`NATS authentication: set only one of ${methods.join(', ')}`)
  if ((user === undefined) !== (password === undefined))
    throw config(
      `NATS authentication: ${SERVE_ENV.user} and ${SERVE_ENV.password} must be set together (${user === undefined ? SERVE_ENV.user : SERVE_ENV.password} is missing)`,
    )

  const options: Partial<ConnectionOptions> = {}
  if (token !== undefined) options.token = token
  if (user !== undefined && password !== undefined) {
    options.user = user
    options.pass = password
  }
  if (credsFile !== undefined) {
    const creds = await readNamedFile(credsFile, 'NATS creds file', cwd)
    const text = new TextDecoder().decode(creds)
    if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text))
      throw config(
        `NATS creds file ${credsFile} holds no user JWT and nkey seed (expected the format nsc writes)`,
      )
    options.authenticator = credsAuthenticator(creds)
  }

  const caFile = flags['nats-tls-ca'] ?? nonEmpty(env, SERVE_ENV.tlsCaFile)
  const certFile = flags['nats-tls-cert'] ?? nonEmpty(env, SERVE_ENV.tlsCertFile)
  const keyFile = flags['nats-tls-key'] ?? nonEmpty(env, SERVE_ENV.tlsKeyFile)
  if ((certFile === undefined) !== (keyFile === undefined))
    throw config(
      `NATS TLS: a client certificate needs its key: set both --nats-tls-cert and --nats-tls-key (${SERVE_ENV.tlsCertFile}, ${SERVE_ENV.tlsKeyFile})`,
    )
  if (caFile !== undefined || certFile !== undefined) {
    // Read here so a wrong path is a clear start-up error, not a TLS handshake failure.
    const tls: NonNullable<ConnectionOptions['tls']> = {}
    if (caFile !== undefined)
      tls.ca = new TextDecoder().decode(await readNamedFile(caFile, 'NATS TLS CA file', cwd))
    if (certFile !== undefined && keyFile !== undefined) {
      tls.cert = new TextDecoder().decode(
        await readNamedFile(certFile, 'NATS TLS certificate file', cwd),
      )
      tls.key = new TextDecoder().decode(await readNamedFile(keyFile, 'NATS TLS key file', cwd))
    }
    options.tls = tls
  }
  return options
}

// NATS subject tokens: no spaces, no wildcards, no empty tokens.
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/
// JetStream stream and KV bucket names.
const JETSTREAM_NAME = /^[A-Za-z0-9_-]{1,255}$/
const QUEUE_GROUP = /^[A-Za-z0-9_.-]{1,255}$/

/**
 * The subject namespace, events stream, checkpoint bucket and queue group: the protocol's
 * defaults unless a deployment separates environments on one NATS cluster (staging and
 * production), in which case the server must use the same names.
 */
const NAMING_SETTINGS: readonly {
  key: keyof DispatcherNaming
  flag: keyof ServeFlags
  variable: string
  rule: RegExp
  ruleText: string
}[] = [
  {
    key: 'prefix',
    flag: 'subject-prefix',
    variable: SERVE_ENV.subjectPrefix,
    rule: SUBJECT_PREFIX,
    ruleText: 'dot-separated tokens of letters, digits, "-" and "_" (no spaces, no wildcards)',
  },
  {
    key: 'eventsStream',
    flag: 'events-stream',
    variable: SERVE_ENV.eventsStream,
    rule: JETSTREAM_NAME,
    ruleText: 'a JetStream stream name: letters, digits, "-" and "_"',
  },
  {
    key: 'checkpointBucket',
    flag: 'checkpoint-bucket',
    variable: SERVE_ENV.checkpointBucket,
    rule: JETSTREAM_NAME,
    ruleText: 'a KV bucket name: letters, digits, "-" and "_"',
  },
  {
    key: 'queueGroup',
    flag: 'queue-group',
    variable: SERVE_ENV.queueGroup,
    rule: QUEUE_GROUP,
    ruleText: 'letters, digits, ".", "-" and "_"',
  },
  {
    key: 'nonceBucket',
    flag: 'nonce-bucket',
    variable: SERVE_ENV.nonceBucket,
    rule: JETSTREAM_NAME,
    ruleText: 'a KV bucket name: letters, digits, "-" and "_"',
  },
  {
    key: 'workStream',
    flag: 'work-stream',
    variable: SERVE_ENV.workStream,
    rule: JETSTREAM_NAME,
    ruleText: 'a JetStream stream name: letters, digits, "-" and "_"',
  },
  {
    key: 'runsBucket',
    flag: 'runs-bucket',
    variable: SERVE_ENV.runsBucket,
    rule: JETSTREAM_NAME,
    ruleText: 'a KV bucket name: letters, digits, "-" and "_"',
  },
]

/**
 * How partitioned runs' work items are taken: `--partition-concurrency n`
 * (NVISY_PARTITION_CONCURRENCY, partitions run at once, 1 to 64) and `--partition-ack-wait
 * seconds` (NVISY_PARTITION_ACK_WAIT, how long an item goes without a sign of life before
 * another instance takes it; set on the consumer by the instance that creates it).
 */
export function partitionSettings(
  env: NodeJS.ProcessEnv,
  flags: ServeFlags,
): { partitionConcurrency?: number; partitionAckWaitMs?: number } {
  const settings: { partitionConcurrency?: number; partitionAckWaitMs?: number } = {}
  const concurrency =
    flags['partition-concurrency'] ?? nonEmpty(env, SERVE_ENV.partitionConcurrency)
  if (concurrency !== undefined) {
    const n = Number(concurrency)
    if (!/^\d+$/.test(concurrency) || n < 1 || n > 64)
      throw config(
        `--partition-concurrency (${SERVE_ENV.partitionConcurrency}) ${JSON.stringify(concurrency)} is not valid: an integer from 1 to 64`,
      )
    settings.partitionConcurrency = n
  }
  const ackWait = flags['partition-ack-wait'] ?? nonEmpty(env, SERVE_ENV.partitionAckWait)
  if (ackWait !== undefined) {
    const seconds = Number(ackWait)
    if (!Number.isFinite(seconds) || seconds < 1 || seconds > 3600)
      throw config(
        `--partition-ack-wait (${SERVE_ENV.partitionAckWait}) ${JSON.stringify(ackWait)} is not valid: seconds from 1 to 3600`,
      )
    settings.partitionAckWaitMs = Math.round(seconds * 1000)
  }
  return settings
}

export function dispatcherNaming(
  env: NodeJS.ProcessEnv,
  flags: ServeFlags,
): Partial<DispatcherNaming> {
  const naming: Partial<DispatcherNaming> = {}
  for (const { key, flag, variable, rule, ruleText } of NAMING_SETTINGS) {
    const value = flags[flag] ?? nonEmpty(env, variable)
    if (value === undefined) continue
    if (!rule.test(value))
      throw config(`--${flag} (${variable}) ${JSON.stringify(value)} is not valid: ${ruleText}`)
    naming[key] = value
  }
  return naming
}

/**
 * How long a sealed credential may be valid at most (`--credential-max-validity` seconds or
 * NVISY_CREDENTIAL_MAX_VALIDITY), as milliseconds; undefined keeps the protocol default. It is
 * also the nonce bucket's TTL when this instance creates the bucket, so it must be positive.
 */
export function credentialMaxValidityMs(
  env: NodeJS.ProcessEnv,
  flags: ServeFlags,
): number | undefined {
  const value = flags['credential-max-validity'] ?? nonEmpty(env, SERVE_ENV.credentialMaxValidity)
  if (value === undefined) return undefined
  const seconds = Number(value)
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 1 || seconds > 86_400)
    throw config(
      `--credential-max-validity (${SERVE_ENV.credentialMaxValidity}) must be a number of seconds from 1 to 86400, got ${JSON.stringify(value)}`,
    )
  return Math.round(seconds * 1000)
}

/** A duration flag in seconds (decimals allowed), as milliseconds. */
export function secondsFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const seconds = Number(value)
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0)
    throw config(`--${name} must be a number of seconds >= 0, got ${JSON.stringify(value)}`)
  return Math.round(seconds * 1000)
}

/**
 * Whether the runtime authenticates to NATS: a token, a user and password, a creds file (from
 * the options), or credentials in a server URL (`nats://user:pass@host`, `nats://token@host`).
 * Without any, anyone who can reach the server may publish requests to this runtime.
 */
export function natsAuthenticated(
  options: Partial<ConnectionOptions>,
  servers: readonly string[],
): boolean {
  if (options.token !== undefined || options.user !== undefined) return true
  if (options.authenticator !== undefined) return true
  return servers.some((server) => {
    try {
      const url = new URL(server.includes('://') ? server : `nats://${server}`)
      return url.username !== '' || url.password !== ''
    } catch {
      return false
    }
  })
}
