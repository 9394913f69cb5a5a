import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { randomBytes } from '@noble/ciphers/utils.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToUtf8, fromBase64, utf8ToBytes, uuidToBytes } from './encoding.js'
import { assertKeyId, assertMasterKey, Keyring } from './keyring.js'
import { configError, VaultError } from './vault-errors.js'

/** The blob layout of an unbound blob (connection id in the associated data); the first byte. */
export const FORMAT_VERSION = 1
/**
 * The layout of a bound blob: as version 1, with a 32-byte binding (e.g. a digest of the
 * parameters that decide where the credentials are sent) appended to the associated data.
 */
export const BOUND_FORMAT_VERSION = 2
/** Length of a version 2 binding. */
export const BINDING_LENGTH = 32
/** HKDF `info` for the per-workspace key of format version 1. */
export const WORKSPACE_KEY_INFO = 'nvisy/vault/v1/workspace-key'
export const HEADER_LENGTH = 2
export const NONCE_LENGTH = 24
export const TAG_LENGTH = 16
/** A blob of an empty plaintext: header, nonce and tag. */
export const MIN_BLOB_LENGTH = HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH
/** Key id used for a bare `masterKey` when no `keyId` is given. */
export const DEFAULT_KEY_ID = 1

const WORKSPACE_KEY_INFO_BYTES = utf8ToBytes(WORKSPACE_KEY_INFO)

/** Plaintext to seal: raw bytes, or any JSON value (sealed as its UTF-8 `JSON.stringify`). */
export type CredentialsPlaintext = Uint8Array | { [key: string]: unknown } | unknown[]

/** Where a blob belongs: all of these are bound into it and must match to open it. */
export interface BlobContext {
  workspaceId: string
  connectionId: string
  /**
   * 32 bytes bound into the blob besides the connection id (format version 2), e.g. a digest of
   * the connection's destination params. Sealing with a binding writes a version 2 blob; a
   * version 2 blob opens only with the same binding, and a version 1 blob never opens when a
   * binding is given (it would not prove it).
   */
  binding?: Uint8Array | undefined
}

/** One master key (`masterKey`, sealed under `keyId`, default 1) or a `keyring`. */
export interface KeySelection {
  masterKey?: Uint8Array | undefined
  keyring?: Keyring | undefined
  /** With `masterKey` only: the generation written into new blobs (0-255, default 1). */
  keyId?: number | undefined
}

export interface EncryptOptions extends BlobContext, KeySelection {
  /** A fixed 24-byte nonce. For test vectors only: a repeated nonce under one key is fatal. */
  nonce?: Uint8Array | undefined
}

export type DecryptOptions = BlobContext & KeySelection

export interface ReencryptOptions extends BlobContext {
  /** The key (or keyring) that opens the blob. */
  from: Uint8Array | Keyring
  /** The key (or keyring, whose current generation is used) to seal it with. */
  to: Uint8Array | Keyring
  /** With a bare `to` key: the key id written into the new blob (default: the old id + 1). */
  toKeyId?: number | undefined
  /** For tests only, as in `encryptCredentials`. */
  nonce?: Uint8Array | undefined
}

/** The parts of a blob's header, readable without any key. */
export interface BlobHeader {
  formatVersion: number
  keyId: number
  nonce: Uint8Array
  ciphertextLength: number
}

/**
 * The per-workspace key: HKDF-SHA256(ikm = master key, salt = the workspace UUID's 16 bytes,
 * info = "nvisy/vault/v1/workspace-key", length = 32).
 */
export function deriveWorkspaceKey(masterKey: Uint8Array, workspaceId: string): Uint8Array {
  assertMasterKey(masterKey)
  const salt = uuidToBytes(workspaceId, 'workspaceId')
  return hkdf(sha256, masterKey, salt, WORKSPACE_KEY_INFO_BYTES, 32)
}

/**
 * The associated data: the blob's 2 header bytes, the connection UUID's 16 bytes and, for
 * format version 2, the 32-byte binding.
 */
export function associatedData(
  formatVersion: number,
  keyId: number,
  connectionId: string,
  binding?: Uint8Array,
) {
  const bound = formatVersion === BOUND_FORMAT_VERSION
  if (bound !== (binding !== undefined)) {
    throw configError(
      'binding',
      bound
        ? `a version ${BOUND_FORMAT_VERSION} blob needs its ${BINDING_LENGTH}-byte binding`
        : `a version ${formatVersion} blob has no binding`,
    )
  }
  const aad = new Uint8Array(HEADER_LENGTH + 16 + (bound ? BINDING_LENGTH : 0))
  aad[0] = formatVersion
  aad[1] = keyId
  aad.set(uuidToBytes(connectionId, 'connectionId'), HEADER_LENGTH)
  if (binding !== undefined) aad.set(checkBinding(binding), HEADER_LENGTH + 16)
  return aad
}

function checkBinding(binding: unknown): Uint8Array {
  if (!(binding instanceof Uint8Array) || binding.length !== BINDING_LENGTH) {
    throw configError('binding', `must be a Uint8Array of ${BINDING_LENGTH} bytes`)
  }
  return binding
}

/** Reads a blob's header; `format` errors for anything this version cannot open. */
export function parseBlobHeader(blob: Uint8Array | string): BlobHeader {
  const bytes = blobBytes(blob)
  if (bytes.length === 0) {
    throw new VaultError({ kind: 'format', field: 'blob', message: 'blob: is empty' })
  }
  const formatVersion = bytes[0]!
  if (formatVersion !== FORMAT_VERSION && formatVersion !== BOUND_FORMAT_VERSION) {
    throw new VaultError({
      kind: 'format',
      field: 'blob',
      message: `blob: unknown format version ${formatVersion} (this package reads versions ${FORMAT_VERSION} and ${BOUND_FORMAT_VERSION})`,
    })
  }
  if (bytes.length < MIN_BLOB_LENGTH) {
    throw new VaultError({
      kind: 'format',
      field: 'blob',
      message: `blob: truncated: ${bytes.length} bytes, a version ${formatVersion} blob has at least ${MIN_BLOB_LENGTH}`,
    })
  }
  return {
    formatVersion,
    keyId: bytes[1]!,
    nonce: bytes.slice(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH),
    ciphertextLength: bytes.length - MIN_BLOB_LENGTH,
  }
}

/**
 * Seals credentials for one connection of one workspace:
 * `version (1) || keyId (1) || nonce (24) || ciphertext || tag (16)`; version 2 when a
 * `binding` is given, else version 1.
 */
export function encryptCredentials(
  plaintext: CredentialsPlaintext,
  options: EncryptOptions,
): Uint8Array {
  const { keyId, masterKey } = sealingKey(options)
  const bytes = plaintextBytes(plaintext)
  try {
    return seal(bytes, masterKey, keyId, options)
  } finally {
    if (!(plaintext instanceof Uint8Array)) bytes.fill(0)
  }
}

/** Opens a blob (bytes or base64); `integrity` error for a wrong key, workspace, connection or any change. */
export function decryptCredentials(blob: Uint8Array | string, options: DecryptOptions): Uint8Array {
  const bytes = blobBytes(blob)
  const header = parseBlobHeader(bytes)
  const masterKey = openingKey(options, header.keyId)
  return open(bytes, header, masterKey, options)
}

/** Opens a blob sealed from a JSON value and parses it. */
export function decryptCredentialsJson<T = unknown>(
  blob: Uint8Array | string,
  options: DecryptOptions,
): T {
  const bytes = decryptCredentials(blob, options)
  try {
    return JSON.parse(bytesToUtf8(bytes)) as T
  } catch (error) {
    if (VaultError.isInstance(error)) throw error
    throw new VaultError({ kind: 'format', message: 'decrypted plaintext is not valid JSON' })
  } finally {
    bytes.fill(0)
  }
}

/**
 * Opens a blob with `from` and seals the same plaintext with `to` (a new random nonce), for
 * master key rotation. The workspace and connection stay the same.
 */
export function reencrypt(blob: Uint8Array | string, options: ReencryptOptions): Uint8Array {
  const bytes = blobBytes(blob)
  const header = parseBlobHeader(bytes)
  const fromKey = keyFrom(options.from, 'from', header.keyId)
  let toKey: { keyId: number; masterKey: Uint8Array }
  if (options.to instanceof Keyring) {
    toKey = { keyId: options.to.currentId, masterKey: options.to.currentKey }
  } else {
    assertMasterKey(options.to, 'to')
    const keyId = options.toKeyId ?? (header.keyId + 1) % 256
    assertKeyId(keyId, 'toKeyId')
    toKey = { keyId, masterKey: options.to }
  }
  const plaintext = open(bytes, header, fromKey, options)
  try {
    return seal(plaintext, toKey.masterKey, toKey.keyId, options)
  } finally {
    plaintext.fill(0)
  }
}

function seal(
  plaintext: Uint8Array,
  masterKey: Uint8Array,
  keyId: number,
  options: BlobContext & { nonce?: Uint8Array | undefined },
): Uint8Array {
  const nonce = options.nonce === undefined ? randomBytes(NONCE_LENGTH) : options.nonce
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) {
    throw configError('nonce', `must be a Uint8Array of ${NONCE_LENGTH} bytes`)
  }
  const version = options.binding === undefined ? FORMAT_VERSION : BOUND_FORMAT_VERSION
  const aad = associatedData(version, keyId, options.connectionId, options.binding)
  const workspaceKey = deriveWorkspaceKey(masterKey, options.workspaceId)
  try {
    const sealed = xchacha20poly1305(workspaceKey, nonce, aad).encrypt(plaintext)
    const blob = new Uint8Array(HEADER_LENGTH + NONCE_LENGTH + sealed.length)
    blob[0] = version
    blob[1] = keyId
    blob.set(nonce, HEADER_LENGTH)
    blob.set(sealed, HEADER_LENGTH + NONCE_LENGTH)
    return blob
  } finally {
    workspaceKey.fill(0)
  }
}

function open(
  blob: Uint8Array,
  header: BlobHeader,
  masterKey: Uint8Array,
  context: BlobContext,
): Uint8Array {
  if (header.formatVersion === FORMAT_VERSION && context.binding !== undefined) {
    // A version 1 blob proves nothing about the binding: opening it would accept any value.
    throw new VaultError({
      kind: 'format',
      field: 'blob',
      message: `blob: a version ${FORMAT_VERSION} blob is not bound to a destination; seal it again with the binding (version ${BOUND_FORMAT_VERSION})`,
    })
  }
  if (header.formatVersion === BOUND_FORMAT_VERSION && context.binding === undefined) {
    throw configError(
      'binding',
      `the blob is version ${BOUND_FORMAT_VERSION}: give the ${BINDING_LENGTH}-byte binding it was sealed with`,
    )
  }
  const aad = associatedData(
    header.formatVersion,
    header.keyId,
    context.connectionId,
    context.binding,
  )
  const workspaceKey = deriveWorkspaceKey(masterKey, context.workspaceId)
  try {
    return xchacha20poly1305(workspaceKey, header.nonce, aad).decrypt(
      blob.subarray(HEADER_LENGTH + NONCE_LENGTH),
    )
  } catch {
    // The library's own error is dropped on purpose: nothing about the failure may leak.
    throw new VaultError({
      kind: 'integrity',
      field: 'blob',
      message:
        'blob: authentication failed (wrong master key, workspace, connection or binding, or the blob was modified)',
    })
  } finally {
    workspaceKey.fill(0)
  }
}

function sealingKey(options: KeySelection): { keyId: number; masterKey: Uint8Array } {
  checkKeySelection(options)
  if (options.keyring !== undefined) {
    if (options.keyId !== undefined) throw configError('keyId', 'is only used with masterKey')
    return { keyId: options.keyring.currentId, masterKey: options.keyring.currentKey }
  }
  const keyId = options.keyId ?? DEFAULT_KEY_ID
  assertKeyId(keyId)
  return { keyId, masterKey: options.masterKey! }
}

function openingKey(options: KeySelection, keyId: number): Uint8Array {
  checkKeySelection(options)
  return keyFrom(options.keyring ?? options.masterKey!, 'masterKey', keyId)
}

/** A bare key opens a blob of any key id (the id is authenticated, so it cannot be swapped). */
function keyFrom(source: Uint8Array | Keyring, field: string, keyId: number): Uint8Array {
  if (source instanceof Keyring) return source.key(keyId)
  assertMasterKey(source, field)
  return source
}

function checkKeySelection(options: KeySelection): void {
  if (typeof options !== 'object' || options === null) {
    throw configError(
      'options',
      'must be an object { masterKey | keyring, workspaceId, connectionId }',
    )
  }
  if (options.masterKey !== undefined && options.keyring !== undefined) {
    throw configError('masterKey', 'give either masterKey or keyring, not both')
  }
  if (options.keyring !== undefined) {
    if (!(options.keyring instanceof Keyring)) throw configError('keyring', 'must be a Keyring')
    return
  }
  if (options.masterKey === undefined) {
    throw new VaultError({
      kind: 'key',
      field: 'masterKey',
      message: 'masterKey: required (or give a keyring)',
    })
  }
  assertMasterKey(options.masterKey)
}

function plaintextBytes(plaintext: CredentialsPlaintext): Uint8Array {
  if (plaintext instanceof Uint8Array) return plaintext
  if (typeof plaintext !== 'object' || plaintext === null) {
    throw configError('plaintext', 'must be a Uint8Array or a JSON object/array')
  }
  let json: string | undefined
  try {
    json = JSON.stringify(plaintext)
  } catch {
    throw configError('plaintext', 'is not JSON-serializable (cycle, bigint or a throwing toJSON)')
  }
  if (json === undefined) throw configError('plaintext', 'is not JSON-serializable')
  return utf8ToBytes(json)
}

function blobBytes(blob: Uint8Array | string): Uint8Array {
  if (blob instanceof Uint8Array) return blob
  if (typeof blob === 'string') return fromBase64(blob, 'blob')
  throw configError('blob', 'must be a Uint8Array or a base64 string')
}
