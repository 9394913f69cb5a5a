import { parseArgs } from 'node:util'
import type { Logger } from '@nvisy/provider-core'
import { executePipeline } from '../executor/execute.js'
import { loadRuntimeSeed } from '../keys.js'
import { createLogger } from '../logger.js'
import { VERSION } from '../version.js'
import { type CliIo, COMMON_HELP, commonOptions, EXIT, registryFor } from './shared.js'

export const SERVE_HELP = `Usage: nvisy serve [options]

Joins NATS and serves the catalog, check, discover and runs.start requests of the Nvisy server
(one instance of a queue group). Drains on SIGTERM/SIGINT.
  --nats url[,url]          NATS servers (NVISY_NATS_URL, default nats://127.0.0.1:4222)
  --server-key X...         the server's public curve key (NVISY_SERVER_PUBLIC_KEY)
  --seed-file file          this runtime's seed, as nvisy keys writes it (NVISY_RUNTIME_SEED_FILE;
                            or the seed itself in NVISY_RUNTIME_SEED; default ~/.nvisy/runtime.seed
                            when it exists, else a key pair for this process only)
  --allow-insecure-key-file use a seed file that group or others can read (warns)
  --dev-plain-credentials   accept plain credentials (development only)
  --nats-creds file         NATS credentials file (or NVISY_NATS_TOKEN, NVISY_NATS_USER/PASSWORD)
  --nats-tls-ca/-cert/-key file
  --subject-prefix p, --events-stream s, --checkpoint-bucket b, --queue-group g
  --nonce-bucket b          KV bucket of opened sealed-credential nonces, shared by the queue
                            group (NVISY_NATS_NONCE_BUCKET, default nvisy-credential-nonces)
  --credential-max-validity seconds
                            the longest validity a sealed credential may have (and the nonce
                            bucket's TTL when this instance creates it; default 900)
  --partition-concurrency n partitions of partitioned runs (runs.start "partitions") this
                            instance runs at once (NVISY_PARTITION_CONCURRENCY, default 2)
  --partition-ack-wait seconds
                            how long a partition's work item may go without a sign of life
                            from its instance before another takes it and resumes it from its
                            checkpoint (NVISY_PARTITION_ACK_WAIT, default 30)
  --work-stream s, --runs-bucket b
                            the partition work-queue stream and partitioned-runs bucket
                            (NVISY_NATS_WORK_STREAM, default NVISY_PARTITION_WORK;
                            NVISY_NATS_RUNS_BUCKET, default nvisy-partitioned-runs)
  --drain-grace seconds, --drain-timeout seconds
  --fs-root dir             a folder requests may use as a local path (the fs provider's root);
                            repeatable, plus NVISY_FS_ROOTS (colon-separated). With none, every
                            request with a local path is refused. Paths are compared after
                            resolving symlinks and "..".
  --log-level level
${COMMON_HELP}
Warns when NATS is joined without authentication.
`

export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...commonOptions,
      nats: { type: 'string' },
      'server-key': { type: 'string' },
      'seed-file': { type: 'string' },
      'dev-plain-credentials': { type: 'boolean' },
      'log-level': { type: 'string' },
      'nats-creds': { type: 'string' },
      'nats-tls-ca': { type: 'string' },
      'nats-tls-cert': { type: 'string' },
      'nats-tls-key': { type: 'string' },
      'subject-prefix': { type: 'string' },
      'events-stream': { type: 'string' },
      'checkpoint-bucket': { type: 'string' },
      'queue-group': { type: 'string' },
      'nonce-bucket': { type: 'string' },
      'work-stream': { type: 'string' },
      'runs-bucket': { type: 'string' },
      'partition-concurrency': { type: 'string' },
      'partition-ack-wait': { type: 'string' },
      'credential-max-validity': { type: 'string' },
      'drain-grace': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'fs-root': { type: 'string', multiple: true },
    },
    allowPositionals: false,
  })
  const logger: Logger = createLogger(io.stderr, values['log-level'] ?? 'info')
  const runtimeSeed = loadRuntimeSeed({
    env: io.env,
    cwd: io.cwd,
    file: values['seed-file'],
    allowInsecureKeyFile: values['allow-insecure-key-file'] === true,
    warn: (message) => logger.warn({}, message),
  })
  const registry = await registryFor(values, io)
  const { startDispatcher, natsConnectionOptions, dispatcherNaming, secondsFlag } = await import(
    '../nats/index.js'
  )
  const { credentialMaxValidityMs } = await import('../nats/serve-options.js')
  const maxValidityMs = credentialMaxValidityMs(io.env, values)
  const { natsAuthenticated, partitionSettings } = await import('../nats/serve-options.js')
  const partitioning = partitionSettings(io.env, values)
  const { fsRootsFrom } = await import('../nats/local-paths.js')
  const servers = values.nats ?? io.env.NVISY_NATS_URL ?? 'nats://127.0.0.1:4222'
  const drainGraceMs = secondsFlag('drain-grace', values['drain-grace'])
  const drainTimeoutMs = secondsFlag('drain-timeout', values['drain-timeout'])
  const natsOptions = await natsConnectionOptions(io.env, values, io.cwd)
  const localPathRoots = fsRootsFrom(values['fs-root'], io.env, io.cwd)
  if (!natsAuthenticated(natsOptions, splitServers(servers))) {
    logger.warn(
      { servers: splitServers(servers).map(withoutUserInfo) },
      'joining NATS without authentication: anyone who can reach the server can send requests to this runtime; set NVISY_NATS_CREDS_FILE, NVISY_NATS_TOKEN or NVISY_NATS_USER/NVISY_NATS_PASSWORD, and restrict who may publish the runtime subjects',
    )
  }
  const dispatcher = await startDispatcher({
    servers: splitServers(servers),
    registry,
    execute: executePipeline,
    serverPublicKey: values['server-key'] ?? io.env.NVISY_SERVER_PUBLIC_KEY,
    runtimeSeed: runtimeSeed.seed,
    allowPlainCredentials: values['dev-plain-credentials'] === true,
    logger,
    version: VERSION,
    natsOptions,
    naming: dispatcherNaming(io.env, values),
    ...(maxValidityMs === undefined ? {} : { credentialMaxValidityMs: maxValidityMs }),
    localPathRoots,
    ...(drainGraceMs === undefined ? {} : { drainGraceMs }),
    ...(drainTimeoutMs === undefined ? {} : { drainTimeoutMs }),
    ...partitioning,
  })
  logger.info(
    {
      instanceId: dispatcher.instanceId,
      publicKey: dispatcher.publicKey,
      runtimeKey:
        runtimeSeed.source.kind === 'env'
          ? runtimeSeed.source.variable
          : runtimeSeed.source.kind === 'file'
            ? runtimeSeed.source.path
            : 'generated for this process (no seed: nvisy keys creates one)',
      providers: registry.list().map((p) => p.id),
      fsRoots: localPathRoots,
    },
    'serving',
  )
  await new Promise<void>((resolveWait) => {
    if (io.signal.aborted) resolveWait()
    else io.signal.addEventListener('abort', () => resolveWait(), { once: true })
  })
  logger.info({}, 'draining')
  await dispatcher.drain()
  return EXIT.completed
}

/** A server URL without any user or password in it, for logs. */
function withoutUserInfo(server: string): string {
  return server.replace(/\/\/[^@/]*@/, '//')
}

function splitServers(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}
