import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  type Logger,
  MAX_PARTITIONS,
  type Provider,
  ProviderError,
  toProviderError,
  type ValidationIssue,
} from '@nvisy/provider-core'
import { type JsonObject, type Keyring, LocalConnectionStore } from '@nvisy/vault'
import { FileCheckpointStore } from './checkpoints/file-checkpoint-store.js'
import {
  applyStoredConnections,
  connectionStorePath,
  destinationOverrideIssues,
  loadStoreKeyring,
  localConnectionResolver,
  openFromStore,
  resolveEnvReferences,
  storeDestinationDigest,
  storeError,
  summaryStore,
  usesStoredConnections,
} from './connections.js'
import { credentialsFromEnv, describeAlternatives } from './credentials-env.js'
import { type DiscoverFormat, discoverFormat, streamsTable } from './discover-output.js'
import { checkPipeline } from './executor/check.js'
import { executePipeline } from './executor/execute.js'
import { executePartitioned } from './executor/partitioned.js'
import type { ExecuteOptions, RunEvent } from './executor/types.js'
import { validatePipeline } from './executor/validate.js'
import { parseJsonText } from './json-text.js'
import { createRuntimeKeys, defaultSeedPath, loadRuntimeSeed, writeSeedFile } from './keys.js'
import { CONFIG_FILE_NAME, loadProviders, providerPackages, readRuntimeConfig } from './loader.js'
import { createLogger } from './logger.js'
import type { Pipeline } from './pipeline-types.js'
import { ProgressLine } from './progress.js'
import type { MapProviderRegistry } from './registry.js'
import { VERSION } from './version.js'

const LOG_FORMATS = ['auto', 'json', 'pretty']

export const EXIT = { completed: 0, failed: 1, usage: 2, cancelled: 3 } as const

/** What the CLI talks to: streams, environment, working directory, and a cancel signal. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean }
  stderr: { write(text: string): unknown; isTTY?: boolean }
  env: NodeJS.ProcessEnv
  cwd: string
  /** Aborted on the first SIGINT/SIGTERM. */
  signal: AbortSignal
}

const USAGE = `nvisy ${VERSION}: run Nvisy pipelines

Usage:
  nvisy run <pipeline.json> [--config nvisy.config.json] [--checkpoints .nvisy/checkpoints.json] [--no-resume] [--partitions N] [--run-id id] [--store file]
  nvisy validate <pipeline.json> [--check] [--config ...] [--store file]
  nvisy providers [--config ...]
  nvisy check <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [--credentials-env PREFIX] [--config ...] [--store file]
  nvisy discover <provider> (--connection conn.json | --connection-id uuid | --params ...) [--credentials-env PREFIX] [--format table|json | --json] [--config ...]
  nvisy connections add --provider <id|package> [--params params.json|'{json}'] (--credentials creds.json | --credentials-env PREFIX) [--id uuid] [--store file]
  nvisy connections list [--store file]
  nvisy connections remove <id> [--store file]
  nvisy keys [--out file] [--force] [--print-seed]
  nvisy serve [--nats nats://127.0.0.1:4222] [--server-key X...] [--seed-file file] [--dev-plain-credentials] [--config ...]
              [--nats-creds file] [--nats-tls-ca file] [--nats-tls-cert file --nats-tls-key file]
              [--subject-prefix nvisy.v1] [--events-stream S] [--checkpoint-bucket B] [--queue-group G]
              [--drain-grace seconds] [--drain-timeout seconds] [--fs-root dir]...

Every command takes --help (-h): it prints that command's help and does nothing else.
run, check, discover and connections add take --allow-insecure-key-file (see Master key).

Providers are the packages named in nvisy.config.json ({"providers": [...]}, looked up next to
the pipeline file, then in the working directory), --provider name[,name] and NVISY_PROVIDERS.
Connection values may be {"$env": "NAME"} references, resolved when the run starts.
A node's connection may be {"connectionId": "<uuid>"}: a connection from the local store
(--store, NVISY_CONNECTIONS_FILE, default ~/.nvisy/connections.json), its credentials encrypted
with the master key from NVISY_MASTER_KEY or NVISY_MASTER_KEY_FILE and decrypted only for the run.
nvisy keys creates the runtime's key pair: the seed goes to ~/.nvisy/runtime.seed (mode 0600; --out
another file), the public key is printed for the Nvisy server, which seals credentials to it.
serve reads NVISY_NATS_URL, NVISY_SERVER_PUBLIC_KEY and the runtime seed (NVISY_RUNTIME_SEED, else
the file --seed-file or NVISY_RUNTIME_SEED_FILE names, else ~/.nvisy/runtime.seed) from the environment,
NATS authentication from NVISY_NATS_TOKEN, NVISY_NATS_USER + NVISY_NATS_PASSWORD or
NVISY_NATS_CREDS_FILE (one of them), TLS files from NVISY_NATS_TLS_{CA,CERT,KEY}_FILE, and
NVISY_NATS_{SUBJECT_PREFIX,EVENTS_STREAM,CHECKPOINT_BUCKET,QUEUE_GROUP}. On SIGTERM or SIGINT it
drains: no new requests, runs go on for --drain-grace (default 0 s), are then stopped at a batch
boundary with their checkpoints written (at most --drain-timeout, default 30 s), then it exits 0.

Master key: a NVISY_MASTER_KEY_FILE (or a runtime seed file for serve) that group or others can
read is refused (exit 2; fix it with chmod 600 <file>) unless --allow-insecure-key-file is given
(then a warning is printed).
serve confines local paths (the fs provider's root) of every request to the folders given by
--fs-root (repeatable) and NVISY_FS_ROOTS (colon-separated); with none, fs requests are refused.

Exit codes (run, validate, check, discover, connections, keys):
  0  ok: the run completed (every item arrived), the pipeline is valid, the check passed
  1  failed: the run failed or ended 'partial' (items refused under a failure budget), the check
     or discover failed (unreachable or unknown host, bad credentials, missing permission)
  2  usage or configuration error: bad flags, an invalid pipeline or connection file, an unknown
     provider, invalid params, a missing or unusable master key or store entry
  3  cancelled (SIGINT/SIGTERM); the run's checkpoints are saved
`

const COMMON_HELP = `  --config file         nvisy.config.json naming the provider packages
  --provider name       a provider package to load (repeatable, or name,name)
  --store file          the local connection store (default NVISY_CONNECTIONS_FILE, ~/.nvisy/connections.json)
  -h, --help            this help`

const CONNECTION_HELP = `  --params '{json}'|file   the connection's params (instead of a connection file)
  --credentials-env PREFIX  the credentials from variables: each field of the provider's
                            credentials schema from PREFIX_FIELD (password from PG_PASSWORD,
                            a nested tls.ca from PG_TLS__CA; non-strings as JSON)`

const KEY_HELP = `  --allow-insecure-key-file  use a NVISY_MASTER_KEY_FILE that group or others can read (warns)`

/** Each command's help: printed by `nvisy <command> --help` (and `-h`), which does nothing else. */
export const COMMAND_HELP: Record<string, string> = {
  run: `Usage: nvisy run <pipeline.json> [options]

Runs a pipeline in this process (no NATS). Resumes from its checkpoints unless --no-resume.
  --checkpoints file    checkpoint file (default .nvisy/checkpoints.json, created mode 0600)
  --no-resume           start from the beginning
  --partitions N        split the (single) source's stream into up to N disjoint partitions (key
                        ranges) read at once in this process, each with its own checkpoint; the
                        plan is kept with the checkpoints: a resumed run resumes each partition
                        where it stopped and does not read a completed one again. A source that
                        cannot split runs as one. 1 to ${MAX_PARTITIONS}
  --run-id id           the run id (default a new UUID)
  --log-level level     debug, info, warn or error
  --log-format f        auto (default: a live progress line and a final table on a terminal,
                        JSON lines otherwise), json, or pretty
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 completed, 1 failed or partial, 2 usage or configuration error, 3 cancelled.
`,
  validate: `Usage: nvisy validate <pipeline.json> [--check] [options]

Checks a pipeline file: node and edge shapes, params and stream settings against each
provider's schemas, edge types. Nothing connects, unless --check.
  --check               also connect every node, check its credentials, and ask each sink
                        whether its destination exists or will be created
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 valid, 1 --check found a problem, 2 invalid pipeline or usage error.
`,
  providers: `Usage: nvisy providers [options]

Prints the loaded providers: ids, versions, capabilities and JSON Schemas.
${COMMON_HELP}
`,
  check: `Usage: nvisy check <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [options]

Connects and runs the provider's check: reachability, credentials, permissions.
conn.json is {"params": {...}, "credentials": {...}} ({"$env": "NAME"} values allowed), or
{"connectionId": "<uuid>", "params": {...}} to add non-destination params to a stored one.
${CONNECTION_HELP}
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 the check passed, 1 it failed (unreachable, unknown host, bad credentials),
2 usage or configuration error (bad flags or file, unknown provider, invalid params).
`,
  discover: `Usage: nvisy discover <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [options]

Connects and lists the streams (tables, buckets, collections...) the connection can read, with
their fields (columns) where the system has a schema.
  --format table|json   a table (one row per field: stream, type, data, field, field type,
                        nullable, key) or JSON ({"streams": [...]}, with each stream's settings
                        for a pipeline). Default: a table on a terminal, JSON otherwise (a pipe
                        or a file)
  --json                the same as --format json
${CONNECTION_HELP}
${KEY_HELP}
${COMMON_HELP}
Exit codes: as nvisy check.
`,
  connections: `Usage: nvisy connections <add|list|remove> [options]

The local connection store: credentials sealed with the master key (NVISY_MASTER_KEY or
NVISY_MASTER_KEY_FILE), bound to the connection's provider and destination params.
  add       store a connection (nvisy connections add --help)
  list      list connections, without credentials (no master key needed)
  remove    remove a connection (no master key needed)
`,
  'connections add': `Usage: nvisy connections add --provider <id|package> [--params params.json|'{json}'] (--credentials creds.json | --credentials-env PREFIX) [--id uuid] [--store file]

Validates params and credentials against the provider's schemas, then stores the connection,
its credentials sealed with the master key. Prints its id.
  --credentials-env PREFIX  each credentials field from PREFIX_FIELD (password from PG_PASSWORD,
                            accessKeyId from S3_ACCESS_KEY_ID, a nested tls.ca from PG_TLS__CA),
                            every alternative of the schema (MySQL: MYSQL_USER + MYSQL_PASSWORD,
                            or MYSQL_URL); nvisy providers shows each provider's fields
${KEY_HELP}
  --config file, --store file, -h/--help as everywhere
`,
  'connections list': `Usage: nvisy connections list [--store file]

Lists stored connections (id, provider, params, createdAt), never credentials.
`,
  'connections remove': `Usage: nvisy connections remove <id> [--store file]

Removes a stored connection. Exit code 1 when there is none with that id.
`,
  keys: `Usage: nvisy keys [--out file] [--force] [--print-seed]

Creates the runtime's key pair (an xkey: X25519, as NATS nkeys make it). The Nvisy server seals
each connection's credentials to the public key; only the seed opens them. Every instance of one
deployment shares the seed. Prints {"publicKey": "X...", "seedFile": "..."} as JSON on stdout.
  --out file        where the seed goes (default ~/.nvisy/runtime.seed), created mode 0600
  --force           replace an existing seed file (the server must then get the new public key)
  --print-seed      print the seed on stdout as {"publicKey", "seed"} instead of writing a file,
                    e.g. to put it in a secret store as NVISY_RUNTIME_SEED; nothing is written
Then: nvisy serve reads the seed (NVISY_RUNTIME_SEED, --seed-file, NVISY_RUNTIME_SEED_FILE or
~/.nvisy/runtime.seed), and the server gets the public key (it is also in the catalog reply
and in serve's "serving" log line).
Exit codes: 0 created, 2 the file exists (without --force), cannot be written, or bad flags.
`,
  serve: `Usage: nvisy serve [options]

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
`,
}

/** True when `--help` or `-h` is among the options (before a `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}

/** The help for `args` (a command and maybe a subcommand) when they ask for it. */
function helpFor(command: string, rest: readonly string[]): string | undefined {
  if (!wantsHelp(rest)) return undefined
  if (command === 'connections') {
    const sub = { ls: 'list', rm: 'remove' }[rest[0] ?? ''] ?? rest[0]
    return COMMAND_HELP[`connections ${sub}`] ?? COMMAND_HELP.connections
  }
  return COMMAND_HELP[command]
}

class UsageError extends Error {}

/** A mistake inside a file the user wrote: exit 2 like a usage error, without the usage hint. */
class FileSyntaxError extends UsageError {}

function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`
}

/** A path as the user would write it: relative to the working directory when inside it. */
function shownPath(path: string, cwd: string): string {
  const shown = relative(cwd, path)
  return shown === '' || shown.startsWith('..') || isAbsolute(shown) ? path : shown
}

/**
 * A JSON file the user wrote (pipeline, connection, params, credentials). A syntax error is
 * a usage error `file:line:column: rule` (exit 2), never quoting the text.
 */
async function readJson(path: string, what: string, cwd: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
  try {
    return parseJsonText(text, shownPath(path, cwd))
  } catch (error) {
    throw new FileSyntaxError(`${(error as Error).message} (the ${what} is not valid JSON)`)
  }
}

interface Common {
  config?: string | undefined
  provider?: string[] | undefined
}

async function registryFor(
  flags: Common,
  io: CliIo,
  near?: string,
  extraPackages: string[] = [],
): Promise<MapProviderRegistry> {
  let configPath = flags.config ? resolve(io.cwd, flags.config) : undefined
  if (!configPath) {
    const candidates = [
      near ? join(near, CONFIG_FILE_NAME) : undefined,
      join(io.cwd, CONFIG_FILE_NAME),
    ]
    configPath = candidates.find((c): c is string => c !== undefined && existsSync(c))
  }
  const config = configPath ? await readRuntimeConfig(configPath) : undefined
  const packages = providerPackages({
    config,
    flags: [...(flags.provider ?? []), ...extraPackages],
    env: io.env.NVISY_PROVIDERS,
  })
  return loadProviders(packages, { from: configPath ? dirname(configPath) : io.cwd })
}

const commonOptions = {
  config: { type: 'string' },
  provider: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  store: { type: 'string' },
  'allow-insecure-key-file': { type: 'boolean' },
} as const

/** The master keyring for the local store, honouring `--allow-insecure-key-file`. */
function storeKeyring(
  values: { 'allow-insecure-key-file'?: boolean | undefined },
  io: CliIo,
): Keyring {
  return loadStoreKeyring(io.env, {
    allowInsecureKeyFile: values['allow-insecure-key-file'] === true,
    warn: (message) => io.stderr.write(`nvisy: ${message}\n`),
  })
}

/** The `nvisy` command: returns the exit code instead of exiting, so tests run it in-process. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  // Help first, before any flag is parsed or anything is read, loaded or connected.
  const help = command === undefined ? undefined : helpFor(command, rest)
  if (help !== undefined) {
    io.stdout.write(help)
    return EXIT.completed
  }
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, io)
      case 'validate':
        return await validateCommand(rest, io)
      case 'providers':
        return await providersCommand(rest, io)
      case 'check':
      case 'discover':
        return await connectionCommand(command, rest, io)
      case 'serve':
        return await serveCommand(rest, io)
      case 'keys':
        return await keysCommand(rest, io)
      case 'connections':
        return await connectionsCommand(rest, io)
      case '--version':
      case '-v':
        io.stdout.write(`${VERSION}\n`)
        return EXIT.completed
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE)
        return command === undefined ? EXIT.usage : EXIT.completed
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const hint = error instanceof FileSyntaxError ? '' : 'Run nvisy --help for usage.\n'
      io.stderr.write(`nvisy: ${(error as Error).message}\n${hint}`)
      return EXIT.usage
    }
    const providerError = toProviderError(error)
    io.stderr.write(`nvisy: ${providerError.message}\n`)
    return providerError.kind === 'config' ? EXIT.usage : EXIT.failed
  }
}

async function loadPipeline(
  path: string | undefined,
  io: CliIo,
): Promise<{ pipeline: Pipeline; file: string }> {
  if (!path) throw new UsageError('a pipeline file is required')
  const file = resolve(io.cwd, path)
  return { pipeline: (await readJson(file, 'pipeline file', io.cwd)) as Pipeline, file }
}

function printIssues(io: CliIo, issues: { path: string; rule: string; message: string }[]): void {
  io.stderr.write(
    `nvisy: the pipeline is not valid:\n${issues.map((i) => `  ${i.path}: ${i.message} (${i.rule})\n`).join('')}`,
  )
}

async function validateCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...commonOptions, check: { type: 'boolean' } },
    allowPositionals: true,
  })
  if (positionals.length !== 1)
    throw new UsageError('nvisy validate takes exactly one pipeline file')
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  // Stored connections' params are in clear: validating needs the store file, not the master key.
  const storeIssues = usesStoredConnections(pipeline)
    ? await applyStoredConnections(
        pipeline,
        summaryStore(connectionStorePath(values.store, io.env, io.cwd)),
        registry,
      )
    : []
  const issues = storeIssues.length > 0 ? storeIssues : validatePipeline(pipeline, registry)
  if (issues.length > 0) {
    printIssues(io, issues)
    return EXIT.usage
  }
  if (values.check === true) return checkPipelineCommand(pipeline, registry, values, io)
  io.stdout.write(json({ valid: true }))
  return EXIT.completed
}

/** `validate --check`: the executor's `checkPipeline` connects every node and asks each sink. */
async function checkPipelineCommand(
  pipeline: Pipeline,
  registry: MapProviderRegistry,
  values: { store?: string | undefined; 'allow-insecure-key-file'?: boolean | undefined },
  io: CliIo,
): Promise<number> {
  let keyring: Keyring | undefined
  try {
    let store: LocalConnectionStore | undefined
    if (usesStoredConnections(pipeline)) {
      keyring = storeKeyring(values, io)
      store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
    }
    const issues = await checkPipeline({
      pipeline,
      registry,
      resolveConnection: localConnectionResolver(io.env, { store, registry }),
      signal: io.signal,
    })
    if (issues.length > 0) {
      io.stdout.write(json({ valid: true, checked: false, issues }))
      io.stderr.write(
        `nvisy: the check found problems:\n${issues.map((i) => `  ${i.path}: ${i.message} (${i.rule})\n`).join('')}`,
      )
      return EXIT.failed
    }
    io.stdout.write(json({ valid: true, checked: true }))
    return EXIT.completed
  } finally {
    keyring?.destroy()
  }
}

async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...commonOptions,
      checkpoints: { type: 'string', default: '.nvisy/checkpoints.json' },
      'no-resume': { type: 'boolean' },
      partitions: { type: 'string' },
      'run-id': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
    },
    allowPositionals: true,
  })
  if (positionals.length !== 1) throw new UsageError('nvisy run takes exactly one pipeline file')
  const logFormat = values['log-format'] ?? 'auto'
  if (!LOG_FORMATS.includes(logFormat))
    throw new UsageError(
      `--log-format must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(logFormat)}`,
    )
  const partitions = values.partitions === undefined ? undefined : Number(values.partitions)
  if (
    partitions !== undefined &&
    (!/^\d+$/.test(values.partitions!) || partitions < 1 || partitions > MAX_PARTITIONS)
  )
    throw new UsageError(
      `--partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${JSON.stringify(values.partitions)}`,
    )
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  let store: LocalConnectionStore | undefined
  let keyring: Keyring | undefined
  try {
    let storeIssues: ValidationIssue[] = []
    if (usesStoredConnections(pipeline)) {
      // The key is loaded (and checked) now; credentials are decrypted only when the executor
      // resolves each node's connection, and the key is wiped when the run ends.
      keyring = storeKeyring(values, io)
      store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
      storeIssues = await applyStoredConnections(pipeline, store, registry)
    }
    const issues = storeIssues.length > 0 ? storeIssues : validatePipeline(pipeline, registry)
    if (issues.length > 0) {
      printIssues(io, issues)
      return EXIT.usage
    }
    return await executeRun(pipeline, registry, values, io, store, partitions)
  } finally {
    keyring?.destroy()
  }
}

async function executeRun(
  pipeline: Pipeline,
  registry: MapProviderRegistry,
  values: {
    checkpoints: string
    'no-resume'?: boolean | undefined
    'run-id'?: string | undefined
    'log-level'?: string | undefined
    'log-format'?: string | undefined
  },
  io: CliIo,
  store: LocalConnectionStore | undefined,
  partitions?: number | undefined,
): Promise<number> {
  // A live progress line on a terminal, JSON log lines otherwise (or as --log-format says).
  const format = values['log-format'] ?? 'auto'
  const tty = format === 'auto' ? io.stderr.isTTY === true : format === 'pretty'
  const logger = createLogger(io.stderr, values['log-level'] ?? (tty ? 'warn' : 'info'))
  const progress = tty ? new ProgressLine((text) => io.stderr.write(text)) : undefined
  const runId = values['run-id'] ?? randomUUID()
  const onEvent = (event: RunEvent) => {
    if (event.type === 'progress') {
      if (progress) progress.update(event.nodes)
      else logger.info({ event: 'progress', nodes: event.nodes }, 'progress')
      return
    }
    if (progress && event.type === 'item_failed') {
      progress.end()
      io.stderr.write(`item failed at ${event.nodeId}: ${event.item}: ${event.error.message}\n`)
      return
    }
    if (!progress) logger.info({ event }, event.type)
  }
  const run = (options: ExecuteOptions) =>
    partitions === undefined
      ? executePipeline(options)
      : executePartitioned({ ...options, partitions })
  const summary = await run({
    runId,
    pipeline,
    registry,
    resolveConnection: localConnectionResolver(io.env, { store, registry }),
    checkpoints: new FileCheckpointStore(resolve(io.cwd, values.checkpoints)),
    onEvent,
    signal: io.signal,
    resume: values['no-resume'] !== true,
    logger,
  })
  progress?.end()
  io.stdout.write(json({ runId, pipelineId: pipeline.id, ...summary }))
  return runExitCode(summary as { status: string; error?: { kind?: string; message?: string } }, io)
}

/**
 * 0 only for 'completed' (every item arrived); 3 for 'cancelled'; 2 for a run that failed on
 * its configuration; 1 for anything else: 'failed', 'partial' (items refused under a failure
 * budget), or a status this CLI does not know.
 */
export function runExitCode(
  summary: { status: string; error?: { kind?: string; message?: string } | undefined },
  io: Pick<CliIo, 'stderr'>,
): number {
  switch (summary.status) {
    case 'completed':
      return EXIT.completed
    case 'cancelled':
      return EXIT.cancelled
    case 'failed':
      io.stderr.write(`nvisy: run failed: ${summary.error?.message ?? 'unknown error'}\n`)
      return summary.error?.kind === 'config' ? EXIT.usage : EXIT.failed
    default:
      io.stderr.write(
        `nvisy: run ended ${summary.status}: not every item arrived (see the summary's counts)\n`,
      )
      return EXIT.failed
  }
}

async function providersCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: commonOptions, allowPositionals: false })
  const registry = await registryFor(values, io)
  io.stdout.write(
    json({ runtime: { version: VERSION }, providers: registry.list().map((p) => p.describe()) }),
  )
  return EXIT.completed
}

function providerNotLoaded(
  providerId: string,
  registry: MapProviderRegistry,
  hint = '',
): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `provider ${providerId} is not loaded (loaded: ${
      registry
        .list()
        .map((p) => p.id)
        .join(', ') || 'none'
    })${hint}`,
  })
}

/** `--credentials-env PREFIX`: the credentials from variables; none of them set is a usage error. */
function readCredentialsEnv(
  provider: Provider,
  prefix: string,
  env: NodeJS.ProcessEnv,
): { credentials: Record<string, unknown>; variables: Record<string, string>; prefix: string } {
  const fromEnv = credentialsFromEnv(provider, prefix, env)
  const names = Object.values(fromEnv.variables)
  if (fromEnv.read.length === 0 && names.length > 0) {
    throw new UsageError(
      `--credentials-env ${prefix}: none of ${names.join(', ')} is set (the ${provider.id} credentials schema's fields, see nvisy providers)`,
    )
  }
  return { ...fromEnv, prefix }
}

/**
 * `provider.validateInput`, with each credentials issue naming the variable its field came
 * from when the credentials came from `--credentials-env` (never a value).
 */
function validateWithVariables(
  provider: Provider,
  input: { params: unknown; credentials: unknown },
  fromEnv: { prefix: string; variables: Record<string, string> } | undefined,
): void {
  try {
    provider.validateInput(input)
  } catch (error) {
    if (!ProviderError.isInstance(error) || !error.issues || !fromEnv) throw error
    const { prefix, variables } = fromEnv
    const hinted = error.issues.map((i) => {
      if (i.path === '/credentials' && (i.rule === 'anyOf' || i.rule === 'oneOf')) {
        const alternatives = describeAlternatives(provider.definition.credentials, prefix)
        return alternatives
          ? { ...i, message: `${i.message}: set the variables of one of ${alternatives}` }
          : i
      }
      const pointer = /^\/credentials(\/.+)$/.exec(i.path)?.[1]
      const variable = pointer === undefined ? undefined : variables[pointer]
      return variable ? { ...i, message: `${i.message} (from ${variable})` } : i
    })
    throw new ProviderError({
      kind: 'config',
      message: `invalid ${provider.id} connection: ${hinted.map((i) => `${i.path} ${i.message} (${i.rule})`).join('; ')}`,
      issues: hinted,
    })
  }
}

async function connectionCommand(
  command: 'check' | 'discover',
  args: string[],
  io: CliIo,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...commonOptions,
      connection: { type: 'string' },
      'connection-id': { type: 'string' },
      params: { type: 'string' },
      'credentials-env': { type: 'string' },
      format: { type: 'string' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
  })
  const providerId = positionals[0]
  if (!providerId || positionals.length !== 1)
    throw new UsageError(`nvisy ${command} takes one provider id`)
  if (command === 'check' && (values.format !== undefined || values.json !== undefined))
    throw new UsageError('nvisy check prints JSON; --format and --json are for nvisy discover')
  let format: DiscoverFormat
  try {
    format = discoverFormat(values, io.stdout.isTTY === true)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const given = (['connection', 'connection-id', 'params'] as const).filter(
    (flag) => values[flag] !== undefined,
  )
  if (given.length > 1)
    throw new UsageError(
      `nvisy ${command} takes one of --connection, --connection-id and --params (got ${given.map((f) => `--${f}`).join(' and ')})`,
    )
  const credentialsEnv = values['credentials-env']
  if (credentialsEnv !== undefined && values['connection-id'] !== undefined)
    throw new UsageError(
      'a stored connection has its credentials: --credentials-env goes with --connection or --params',
    )
  let spec: { params?: unknown; credentials?: unknown; connectionId?: unknown }
  let near: string | undefined
  if (values['connection-id'] !== undefined) {
    spec = { connectionId: values['connection-id'] }
  } else if (values.connection !== undefined) {
    const connectionFile = resolve(io.cwd, values.connection)
    spec = (await readJson(connectionFile, 'connection file', io.cwd)) as typeof spec
    near = dirname(connectionFile)
  } else if (values.params !== undefined || credentialsEnv !== undefined) {
    spec = { params: await readParamsArgument(values.params, io) }
  } else {
    throw new UsageError(
      `nvisy ${command} needs --connection conn.json ({"params": {...}, "credentials": {...}}), --params with --credentials-env PREFIX, or --connection-id <uuid> (a stored connection)`,
    )
  }
  const registry = await registryFor(values, io, near)
  const provider = registry.get(providerId)
  if (!provider) throw providerNotLoaded(providerId, registry)
  let fromEnv: ReturnType<typeof readCredentialsEnv> | undefined
  if (credentialsEnv !== undefined) {
    if (spec.credentials !== undefined)
      throw new UsageError(
        'the connection file has credentials: give either those or --credentials-env, not both',
      )
    fromEnv = readCredentialsEnv(provider, credentialsEnv, io.env)
    spec = { ...spec, credentials: fromEnv.credentials }
  }
  let keyring: Keyring | undefined
  let input: { params: unknown; credentials: unknown }
  try {
    if (spec.connectionId !== undefined) {
      if (spec.credentials !== undefined) {
        throw new UsageError('give either connectionId or credentials, not both')
      }
      const id = String(spec.connectionId)
      keyring = storeKeyring(values, io)
      const store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
      // An override of a destination param is refused before anything is decrypted.
      const summary = await store.get(id).catch((error) => {
        throw storeError(error, store.path, id)
      })
      const overrides = destinationOverrideIssues(provider, spec.params, '/params', summary?.params)
      if (overrides.length > 0) {
        throw new ProviderError({
          kind: 'config',
          message: overrides.map((i) => `${i.path} ${i.message}`).join('; '),
          issues: overrides,
        })
      }
      const stored = await openFromStore(store, id)
      if (stored.provider !== providerId) {
        throw new ProviderError({
          kind: 'config',
          message: `connection ${id} is a ${stored.provider} connection, not ${providerId}`,
        })
      }
      input = {
        params: resolveEnvReferences(
          { ...stored.params, ...((spec.params as object | undefined) ?? {}) },
          io.env,
          '/params',
        ),
        credentials: stored.credentials,
      }
    } else {
      input = {
        params: resolveEnvReferences(spec.params ?? {}, io.env, '/params'),
        credentials: resolveEnvReferences(spec.credentials ?? {}, io.env, '/credentials'),
      }
    }
  } finally {
    keyring?.destroy()
  }
  // Invalid params or credentials are a usage error (2); anything after that is the check failing (1).
  validateWithVariables(provider, input, fromEnv)
  const started = performance.now()
  try {
    const connection = await provider.connect(input, { signal: io.signal })
    try {
      if (command === 'check') {
        await connection.check({ signal: io.signal })
        io.stdout.write(json({ ok: true, latencyMs: Math.round(performance.now() - started) }))
      } else {
        const streams = await connection.discover({ signal: io.signal })
        io.stdout.write(format === 'table' ? streamsTable(streams) : json({ streams }))
      }
    } finally {
      await connection.close().catch(() => {})
    }
    return EXIT.completed
  } catch (error) {
    const providerError = toProviderError(error)
    // A program reading JSON gets the error as JSON too; a person reads stderr.
    if (command === 'check' || format === 'json')
      io.stdout.write(json({ error: providerError.toJSON() }))
    io.stderr.write(`nvisy: ${command} failed: ${providerError.message}\n`)
    return EXIT.failed
  }
}

async function connectionsCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'add':
      return addConnection(rest, io)
    case 'list':
    case 'ls':
      return listConnections(rest, io)
    case 'remove':
    case 'rm':
      return removeConnection(rest, io)
    default:
      throw new UsageError(
        sub === undefined
          ? 'nvisy connections needs a subcommand: add, list or remove'
          : `unknown connections subcommand ${JSON.stringify(sub)} (add, list or remove)`,
      )
  }
}

function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `--params`: inline JSON when it starts with `{`, else a JSON file. */
async function readParamsArgument(value: string | undefined, io: CliIo): Promise<JsonObject> {
  if (value === undefined) return {}
  let parsed: unknown
  if (value.trimStart().startsWith('{')) {
    try {
      parsed = parseJsonText(value, '--params')
    } catch (error) {
      throw new FileSyntaxError(`${(error as Error).message} (--params is not valid JSON)`)
    }
  } else {
    parsed = await readJson(resolve(io.cwd, value), 'params file', io.cwd)
  }
  if (!isJsonObject(parsed)) throw new UsageError('--params must be a JSON object')
  return parsed
}

/** The provider `--provider` names: a loaded provider id, or a package to load. */
async function connectionProvider(
  values: { provider?: string | undefined; config?: string | undefined },
  io: CliIo,
): Promise<Provider> {
  const named = values.provider
  if (named === undefined || named === '')
    throw new UsageError(
      'nvisy connections add needs --provider <id> (e.g. postgres) or a provider package',
    )
  // An id is lower-case letters, digits and dashes; anything else is a package name or path.
  const isPackage = !/^[a-z][a-z0-9-]*$/.test(named)
  const registry = await registryFor(
    { config: values.config },
    io,
    undefined,
    isPackage ? [named] : [],
  )
  const provider = isPackage
    ? registry.list().find((p) => registry.packageOf(p.id) === named)
    : registry.get(named)
  if (!provider) {
    throw providerNotLoaded(
      named,
      registry,
      `; name its package in nvisy.config.json or NVISY_PROVIDERS, or pass the package itself: --provider @nvisy/provider-${named}`,
    )
  }
  return provider
}

async function addConnection(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      store: { type: 'string' },
      provider: { type: 'string' },
      params: { type: 'string' },
      credentials: { type: 'string' },
      'credentials-env': { type: 'string' },
      id: { type: 'string' },
      'allow-insecure-key-file': { type: 'boolean' },
    },
    allowPositionals: true,
  })
  if (positionals.length > 0)
    throw new UsageError(
      `nvisy connections add takes no positional arguments (got ${positionals[0]})`,
    )
  if (values.credentials !== undefined && values['credentials-env'] !== undefined)
    throw new UsageError('give either --credentials or --credentials-env, not both')
  if (values.credentials?.trimStart().startsWith('{'))
    throw new UsageError(
      '--credentials takes a file: credentials on the command line end up in shell history and the process list (or use --credentials-env PREFIX)',
    )
  const id = values.id ?? randomUUID()
  const provider = await connectionProvider(values, io)
  const params = await readParamsArgument(values.params, io)
  let credentials: JsonObject = {}
  let fromEnv: ReturnType<typeof readCredentialsEnv> | undefined
  if (values.credentials !== undefined) {
    const file = resolve(io.cwd, values.credentials)
    // A syntax error names the line, column and rule, never the file's text.
    const parsed = await readJson(file, 'credentials file', io.cwd)
    if (!isJsonObject(parsed))
      throw new UsageError(`credentials file ${file} must hold a JSON object`)
    credentials = parsed
  } else if (values['credentials-env'] !== undefined) {
    fromEnv = readCredentialsEnv(provider, values['credentials-env'], io.env)
    credentials = fromEnv.credentials as JsonObject
  }
  // Both are checked against the provider's schemas before anything is stored; the issues
  // name field paths (/params/host, /credentials/password) and rules, never values.
  validateWithVariables(provider, { params, credentials }, fromEnv)
  const keyring = storeKeyring(values, io)
  try {
    const store = new LocalConnectionStore({
      path: connectionStorePath(values.store, io.env, io.cwd),
      keyring,
      destinationDigest: storeDestinationDigest({
        get: (id) => (id === provider.id ? provider : undefined),
      }),
    })
    const summary = await store
      .add(id, { provider: provider.id, params, credentials })
      .catch((error) => {
        throw storeError(error, store.path)
      })
    io.stdout.write(
      json({
        id: summary.id,
        provider: summary.provider,
        params: summary.params,
        createdAt: summary.createdAt,
        store: store.path,
      }),
    )
    return EXIT.completed
  } finally {
    keyring.destroy()
  }
}

async function listConnections(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { store: { type: 'string' } },
    allowPositionals: false,
  })
  const store = summaryStore(connectionStorePath(values.store, io.env, io.cwd))
  const connections = await store.list().catch((error) => {
    throw storeError(error, store.path)
  })
  io.stdout.write(
    json({
      store: store.path,
      connections: connections.map((c) => ({
        id: c.id,
        provider: c.provider,
        params: c.params,
        createdAt: c.createdAt,
      })),
    }),
  )
  return EXIT.completed
}

async function removeConnection(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { store: { type: 'string' } },
    allowPositionals: true,
  })
  if (positionals.length !== 1)
    throw new UsageError('nvisy connections remove takes one connection id')
  const id = positionals[0]!
  const store = summaryStore(connectionStorePath(values.store, io.env, io.cwd))
  const removed = await store.remove(id).catch((error) => {
    throw storeError(error, store.path)
  })
  if (!removed) {
    io.stderr.write(`nvisy: no connection ${id} in ${store.path}\n`)
    return EXIT.failed
  }
  io.stdout.write(json({ removed: id.toLowerCase() }))
  return EXIT.completed
}

/** `nvisy keys`: a new runtime key pair; the seed to a private file (or stdout when asked). */
async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      force: { type: 'boolean' },
      'print-seed': { type: 'boolean' },
    },
    allowPositionals: false,
  })
  if (values['print-seed'] === true && (values.out !== undefined || values.force === true))
    throw new UsageError('--print-seed writes no file: give it without --out and --force')
  const keys = createRuntimeKeys()
  if (values['print-seed'] === true) {
    io.stdout.write(json({ publicKey: keys.publicKey, seed: keys.seed }))
    return EXIT.completed
  }
  const path = values.out === undefined ? defaultSeedPath(io.env) : resolve(io.cwd, values.out)
  await writeSeedFile(path, keys.seed, values.force === true)
  io.stdout.write(json({ publicKey: keys.publicKey, seedFile: path }))
  io.stderr.write(
    `nvisy: wrote the runtime seed to ${path} (mode 0600; nvisy serve reads it${
      values.out === undefined ? '' : ` with --seed-file ${values.out} or NVISY_RUNTIME_SEED_FILE`
    }). Give the Nvisy server this public key: ${keys.publicKey}\n`,
  )
  return EXIT.completed
}

async function serveCommand(args: string[], io: CliIo): Promise<number> {
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
    './nats/index.js'
  )
  const { credentialMaxValidityMs } = await import('./nats/serve-options.js')
  const maxValidityMs = credentialMaxValidityMs(io.env, values)
  const { natsAuthenticated, partitionSettings } = await import('./nats/serve-options.js')
  const partitioning = partitionSettings(io.env, values)
  const { fsRootsFrom } = await import('./nats/local-paths.js')
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
