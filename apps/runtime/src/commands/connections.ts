import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Provider } from '@nvisy/provider-core'
import { type JsonObject, LocalConnectionStore } from '@nvisy/vault'
import {
  connectionStorePath,
  storeDestinationDigest,
  storeError,
  summaryStore,
} from '../connections.js'
import {
  isJsonObject,
  readCredentialsEnv,
  readParamsArgument,
  validateWithVariables,
} from './connection-input.js'
import {
  type CliIo,
  EXIT,
  json,
  KEY_HELP,
  providerNotLoaded,
  readJson,
  registryFor,
  storeKeyring,
  UsageError,
} from './shared.js'

export const CONNECTIONS_HELP = `Usage: nvisy connections <add|list|remove> [options]

The local connection store: credentials sealed with the master key (NVISY_MASTER_KEY or
NVISY_MASTER_KEY_FILE), bound to the connection's provider and destination params.
  add       store a connection (nvisy connections add --help)
  list      list connections, without credentials (no master key needed)
  remove    remove a connection (no master key needed)
`

export const CONNECTIONS_ADD_HELP = `Usage: nvisy connections add --provider <id|package> [--params params.json|'{json}'] (--credentials creds.json | --credentials-env PREFIX) [--id uuid] [--store file]

Validates params and credentials against the provider's schemas, then stores the connection,
its credentials sealed with the master key. Prints its id.
  --credentials-env PREFIX  each credentials field from PREFIX_FIELD (password from PG_PASSWORD,
                            accessKeyId from S3_ACCESS_KEY_ID, a nested tls.ca from PG_TLS__CA),
                            every alternative of the schema (MySQL: MYSQL_USER + MYSQL_PASSWORD,
                            or MYSQL_URL); nvisy providers shows each provider's fields
${KEY_HELP}
  --config file, --store file, -h/--help as everywhere
`

export const CONNECTIONS_LIST_HELP = `Usage: nvisy connections list [--store file]

Lists stored connections (id, provider, params, createdAt), never credentials.
`

export const CONNECTIONS_REMOVE_HELP = `Usage: nvisy connections remove <id> [--store file]

Removes a stored connection. Exit code 1 when there is none with that id.
`

export async function connectionsCommand(args: string[], io: CliIo): Promise<number> {
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
