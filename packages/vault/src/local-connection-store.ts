import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, fromBase64, isUuid, toBase64, utf8ToBytes } from './encoding.js'
import { Keyring } from './keyring.js'
import { type LoadKeyringOptions, loadKeyring } from './master-key.js'
import {
  BOUND_FORMAT_VERSION,
  DEFAULT_KEY_ID,
  decryptCredentialsJson,
  encryptCredentials,
  parseBlobHeader,
  reencrypt,
} from './vault.js'
import { configError, VaultError } from './vault-errors.js'

/** The workspace the embedded mode seals local connections under, unless told otherwise. */
export const LOCAL_WORKSPACE_ID = '00000000-0000-0000-0000-000000000000'
export const CONNECTIONS_FILE_ENV = 'NVISY_CONNECTIONS_FILE'
export const STORE_FILE_VERSION = 1

const LOCK_STALE_MS = 30_000
const LOCK_TIMEOUT_MS = 10_000

export type JsonObject = { [key: string]: unknown }

/** One connection as written in the file. `credentials` is a base64 vault blob. */
export interface StoredConnection {
  provider: string
  params: JsonObject
  workspaceId: string
  credentials: string
  createdAt: string
}

export interface StoreFile {
  version: number
  connections: Record<string, StoredConnection>
}

export interface NewConnection {
  provider: string
  params?: JsonObject | undefined
  credentials: JsonObject
  /** Defaults to the store's workspace. */
  workspaceId?: string | undefined
}

/** What `list()` shows: everything except the credentials. */
export interface ConnectionSummary {
  id: string
  provider: string
  params: JsonObject
  workspaceId: string
  createdAt: string
  /** The master key generation the credentials are sealed with. */
  keyId: number
}

export interface OpenedConnection {
  id: string
  provider: string
  params: JsonObject
  credentials: JsonObject
  workspaceId: string
  createdAt: string
}

export interface LocalConnectionStoreOptions {
  /** The JSON file; created (mode 0600, parent directory 0700) on the first write. */
  path: string
  masterKey?: Uint8Array | undefined
  keyring?: Keyring | undefined
  /** Workspace for new connections (default `LOCAL_WORKSPACE_ID`). */
  workspaceId?: string | undefined
  /** Injectable clock for tests. */
  now?: (() => Date) | undefined
  /**
   * The digest of the params that decide where a connection's credentials are sent (host,
   * port, URL...), bound into each entry's blob with its provider id: an entry whose provider
   * or destination params were edited in the file does not open. The runtime passes
   * provider-core's `destinationDigest(provider's params schema, params)`. Default:
   * `allParamsDigest`, every param bound.
   */
  destinationDigest?: ((provider: string, params: JsonObject) => string) | undefined
}

/** JSON with object keys sorted at every level (provider-core's `canonicalJson`). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value)
    return text === undefined ? 'null' : text
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`
}

/**
 * Hex SHA-256 of the canonical JSON of `{"/": params}`: provider-core's `destinationDigest`
 * for a provider that marks no destination param (every param bound).
 */
export function allParamsDigest(_provider: string, params: JsonObject): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson({ '/': params }))))
}

/**
 * The 32-byte binding of a store entry (blob format version 2):
 * SHA-256(UTF-8 of the JSON array `["nvisy/vault/v2/store-binding", provider, destinationDigest]`).
 */
export function storeBinding(provider: string, destinationDigest: string): Uint8Array {
  return sha256(
    utf8ToBytes(JSON.stringify(['nvisy/vault/v2/store-binding', provider, destinationDigest])),
  )
}

/** `$NVISY_CONNECTIONS_FILE`, else `~/.nvisy/connections.json`. */
export function defaultStorePath(env: Record<string, string | undefined> = process.env): string {
  const configured = env[CONNECTIONS_FILE_ENV]?.trim()
  return configured ? configured : join(homedir(), '.nvisy', 'connections.json')
}

/**
 * Connections for the embedded mode, in one JSON file with each connection's credentials
 * sealed by the vault format. Writes are atomic (temp file + fsync + rename), serialized within
 * the process and across processes by a `<path>.lock` file.
 */
export class LocalConnectionStore {
  readonly path: string
  readonly workspaceId: string
  readonly #keyring: Keyring
  readonly #now: () => Date
  readonly #destinationDigest: (provider: string, params: JsonObject) => string
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: LocalConnectionStoreOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw configError('path', 'must be a non-empty file path')
    }
    if (options.masterKey !== undefined && options.keyring !== undefined) {
      throw configError('masterKey', 'give either masterKey or keyring, not both')
    }
    if (options.keyring !== undefined) {
      if (!(options.keyring instanceof Keyring)) throw configError('keyring', 'must be a Keyring')
      this.#keyring = options.keyring
    } else if (options.masterKey !== undefined) {
      this.#keyring = new Keyring({
        current: DEFAULT_KEY_ID,
        keys: { [DEFAULT_KEY_ID]: options.masterKey },
      })
    } else {
      throw new VaultError({
        kind: 'key',
        field: 'masterKey',
        message: 'masterKey: required (or give a keyring)',
      })
    }
    const workspaceId = options.workspaceId ?? LOCAL_WORKSPACE_ID
    if (!isUuid(workspaceId)) throw configError('workspaceId', 'must be a UUID')
    this.path = options.path
    this.workspaceId = workspaceId.toLowerCase()
    this.#now = options.now ?? (() => new Date())
    if (options.destinationDigest !== undefined && typeof options.destinationDigest !== 'function')
      throw configError('destinationDigest', 'must be a function (provider, params) => string')
    this.#destinationDigest = options.destinationDigest ?? allParamsDigest
  }

  #binding(provider: string, params: JsonObject): Uint8Array {
    const digest = this.#destinationDigest(provider, params)
    if (typeof digest !== 'string' || digest === '')
      throw configError('destinationDigest', 'must return a non-empty string')
    return storeBinding(provider, digest)
  }

  /** A store whose keys come from the environment (see `loadKeyring`) and path from `defaultStorePath`. */
  static fromEnv(
    options: LoadKeyringOptions & {
      path?: string | undefined
      workspaceId?: string | undefined
    } = {},
  ): LocalConnectionStore {
    return new LocalConnectionStore({
      path: options.path ?? defaultStorePath(options.env),
      keyring: loadKeyring(options),
      workspaceId: options.workspaceId,
    })
  }

  /** Adds a connection; `conflict` if the id exists. The id must be a UUID (it is bound into the blob). */
  async add(id: string, connection: NewConnection): Promise<ConnectionSummary> {
    const connectionId = checkId(id)
    if (typeof connection !== 'object' || connection === null) {
      throw configError('connection', 'must be an object { provider, params, credentials }')
    }
    if (typeof connection.provider !== 'string' || connection.provider.trim() === '') {
      throw configError('provider', 'must be a non-empty string')
    }
    const params = connection.params ?? {}
    if (!isPlainObject(params)) throw configError('params', 'must be a JSON object')
    if (!isPlainObject(connection.credentials)) {
      throw configError('credentials', 'must be a JSON object')
    }
    const workspaceId = connection.workspaceId ?? this.workspaceId
    if (!isUuid(workspaceId)) throw configError('workspaceId', 'must be a UUID')
    // Params are stored in clear: round-trip them through JSON now so a bad value fails here.
    let storedParams: JsonObject
    try {
      storedParams = JSON.parse(JSON.stringify(params))
    } catch {
      throw configError('params', 'must be JSON-serializable')
    }
    const blob = encryptCredentials(connection.credentials, {
      keyring: this.#keyring,
      workspaceId,
      connectionId,
      binding: this.#binding(connection.provider, storedParams),
    })
    return this.#update((file) => {
      if (file.connections[connectionId] !== undefined) {
        throw new VaultError({
          kind: 'conflict',
          field: 'id',
          message: `id: a connection ${connectionId} already exists in ${this.path}`,
        })
      }
      const stored: StoredConnection = {
        provider: connection.provider,
        params: storedParams,
        workspaceId: workspaceId.toLowerCase(),
        credentials: toBase64(blob),
        createdAt: this.#now().toISOString(),
      }
      file.connections[connectionId] = stored
      return summarize(connectionId, stored)
    })
  }

  /** Every connection, oldest first, without credentials. */
  async list(): Promise<ConnectionSummary[]> {
    const file = await this.#read()
    return Object.entries(file.connections)
      .map(([id, stored]) => summarize(id, stored))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  /** One connection without credentials, or undefined. */
  async get(id: string): Promise<ConnectionSummary | undefined> {
    const connectionId = checkId(id)
    const stored = (await this.#read()).connections[connectionId]
    return stored === undefined ? undefined : summarize(connectionId, stored)
  }

  /** Removes a connection; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const connectionId = checkId(id)
    return this.#update((file) => {
      if (file.connections[connectionId] === undefined) return false
      delete file.connections[connectionId]
      return true
    })
  }

  /** A connection with its credentials decrypted; `not_found` if there is none. */
  async open(id: string): Promise<OpenedConnection> {
    const connectionId = checkId(id)
    const stored = (await this.#read()).connections[connectionId]
    if (stored === undefined) {
      throw new VaultError({
        kind: 'not_found',
        field: 'id',
        message: `id: no connection ${connectionId} in ${this.path}`,
      })
    }
    if (parseBlobHeader(stored.credentials).formatVersion !== BOUND_FORMAT_VERSION) {
      throw new VaultError({
        kind: 'format',
        field: 'id',
        message: `connection ${connectionId} was stored by an earlier release, whose params (host, port...) are not bound to its credentials, so it is not opened: remove it and add it again (nvisy connections remove ${connectionId}, then nvisy connections add)`,
      })
    }
    let credentials: unknown
    try {
      credentials = decryptCredentialsJson<unknown>(stored.credentials, {
        keyring: this.#keyring,
        workspaceId: stored.workspaceId,
        connectionId,
        binding: this.#binding(stored.provider, stored.params),
      })
    } catch (error) {
      if (VaultError.isInstance(error) && error.kind === 'integrity') {
        throw new VaultError({
          kind: 'integrity',
          field: 'id',
          message: `connection ${connectionId}: the credentials do not open: its provider or destination params (host, port...) were changed in ${this.path}, the entry was modified, or the master key is not the one it was sealed with`,
        })
      }
      throw error
    }
    if (!isPlainObject(credentials)) {
      throw new VaultError({
        kind: 'format',
        message: `connection ${connectionId}: decrypted credentials are not a JSON object`,
      })
    }
    return {
      id: connectionId,
      provider: stored.provider,
      params: stored.params,
      credentials,
      workspaceId: stored.workspaceId,
      createdAt: stored.createdAt,
    }
  }

  /**
   * Re-encrypts every connection sealed with an older key generation under the keyring's
   * current one, in one atomic write. Returns how many were re-encrypted.
   */
  async rekey(): Promise<number> {
    return this.#update((file) => {
      let count = 0
      for (const [id, stored] of Object.entries(file.connections)) {
        const header = parseBlobHeader(stored.credentials)
        if (header.keyId === this.#keyring.currentId) continue
        // Unbound entries of an earlier release are left as they are: sealing them bound to
        // their current params would vouch for params nobody checked. `open` refuses them.
        if (header.formatVersion !== BOUND_FORMAT_VERSION) continue
        const blob = reencrypt(stored.credentials, {
          from: this.#keyring,
          to: this.#keyring,
          workspaceId: stored.workspaceId,
          connectionId: id,
          binding: this.#binding(stored.provider, stored.params),
        })
        stored.credentials = toBase64(blob)
        count += 1
      }
      return count
    })
  }

  /** Read-modify-write under the in-process queue and the cross-process lock file. */
  #update<T>(change: (file: StoreFile) => T): Promise<T> {
    const run = async () => {
      const release = await acquireLock(`${this.path}.lock`)
      try {
        const file = await this.#read()
        const result = change(file)
        await writeAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`)
        return result
      } finally {
        await release()
      }
    }
    const result = this.#queue.then(run, run)
    this.#queue = result.catch(() => undefined)
    return result
  }

  async #read(): Promise<StoreFile> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { version: STORE_FILE_VERSION, connections: {} }
      }
      throw error
    }
    await makePrivate(this.path)
    return parseStoreFile(text, this.path)
  }
}

/**
 * A store file left readable by group or others (by an earlier release, a copy, an editor) is
 * made owner-only (0600) when read. Best effort: a file owned by another user stays as it is.
 */
async function makePrivate(path: string): Promise<void> {
  if (process.platform === 'win32') return
  try {
    const info = await stat(path)
    if ((info.mode & 0o077) !== 0) await chmod(path, 0o600)
  } catch {
    // Not ours to change (or gone): reading goes on.
  }
}

function parseStoreFile(text: string, path: string): StoreFile {
  const invalid = (rule: string) =>
    new VaultError({ kind: 'format', field: 'path', message: `${path}: ${rule}` })
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw invalid('is not valid JSON')
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed.connections)) {
    throw invalid('must be an object with a "connections" object')
  }
  const version = parsed.version ?? STORE_FILE_VERSION
  if (version !== STORE_FILE_VERSION) {
    throw invalid(
      `unknown store file version ${String(version)} (this package reads ${STORE_FILE_VERSION})`,
    )
  }
  for (const [id, entry] of Object.entries(parsed.connections)) {
    const where = `connections["${id}"]`
    if (!isUuid(id)) throw invalid(`${where}: the id must be a UUID`)
    if (!isPlainObject(entry)) throw invalid(`${where}: must be an object`)
    if (typeof entry.provider !== 'string') throw invalid(`${where}.provider: must be a string`)
    if (!isPlainObject(entry.params)) throw invalid(`${where}.params: must be an object`)
    if (!isUuid(entry.workspaceId)) throw invalid(`${where}.workspaceId: must be a UUID`)
    if (typeof entry.credentials !== 'string') throw invalid(`${where}.credentials: must be base64`)
    try {
      fromBase64(entry.credentials)
    } catch {
      throw invalid(`${where}.credentials: must be base64`)
    }
    if (typeof entry.createdAt !== 'string') throw invalid(`${where}.createdAt: must be a string`)
  }
  return {
    version: STORE_FILE_VERSION,
    connections: parsed.connections as Record<string, StoredConnection>,
  }
}

function summarize(id: string, stored: StoredConnection): ConnectionSummary {
  return {
    id,
    provider: stored.provider,
    params: stored.params,
    workspaceId: stored.workspaceId,
    createdAt: stored.createdAt,
    keyId: parseBlobHeader(stored.credentials).keyId,
  }
}

function checkId(id: unknown): string {
  if (!isUuid(id)) throw configError('id', 'must be a connection UUID')
  return id.toLowerCase()
}

function isPlainObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Writes a sibling temp file (mode 0600), fsyncs it, renames it over `path`, fsyncs the directory. */
async function writeAtomic(path: string, content: string): Promise<void> {
  const directory = dirname(path)
  await mkdir(directory, { recursive: true, mode: 0o700 })
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx', 0o600)
    try {
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
  try {
    const dir = await open(directory, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  } catch {
    // Directory fsync is not supported everywhere (e.g. Windows); the rename already happened.
  }
}

async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 })
  const deadline = Date.now() + LOCK_TIMEOUT_MS
  let delay = 5
  for (;;) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
      return () => unlink(lockPath).catch(() => undefined)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const info = await stat(lockPath).catch(() => undefined)
    if (info !== undefined && Date.now() - info.mtimeMs > LOCK_STALE_MS) {
      await unlink(lockPath).catch(() => undefined)
      continue
    }
    if (Date.now() > deadline) {
      throw new VaultError({
        kind: 'conflict',
        field: 'path',
        message: `${lockPath}: still locked by another process after ${LOCK_TIMEOUT_MS} ms`,
      })
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 100)
  }
}
