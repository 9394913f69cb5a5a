import { readFileSync, statSync } from 'node:fs'
import { randomBytes } from '@noble/ciphers/utils.js'
import { bytesToHex, fromBase64, hexToBytes, toBase64 } from './encoding.js'
import { assertKeyId, Keyring, MASTER_KEY_LENGTH } from './keyring.js'
import { DEFAULT_KEY_ID } from './vault.js'
import { configError, VaultError } from './vault-errors.js'

export const MASTER_KEY_ENV = 'NVISY_MASTER_KEY'
export const MASTER_KEY_FILE_ENV = 'NVISY_MASTER_KEY_FILE'
export const MASTER_KEY_ID_ENV = 'NVISY_MASTER_KEY_ID'
export const PREVIOUS_MASTER_KEYS_ENV = 'NVISY_MASTER_KEYS_PREVIOUS'

/**
 * A 32-byte master key from its text form: 64 hex digits, or base64 / base64url of 32 bytes.
 * Surrounding whitespace is ignored. Errors name `field`, never the value.
 */
export function parseMasterKey(text: string, field = 'masterKey'): Uint8Array {
  if (typeof text !== 'string') throw keyError(field, 'must be a string (hex or base64)')
  const trimmed = text.trim()
  if (trimmed.length === 0) throw keyError(field, 'is empty')
  let bytes: Uint8Array
  if (/^[0-9a-f]{64}$/i.test(trimmed)) {
    bytes = hexToBytes(trimmed, field)
  } else {
    try {
      bytes = fromBase64(trimmed, field)
    } catch {
      throw keyError(field, `must be ${MASTER_KEY_LENGTH} bytes as 64 hex digits or base64`)
    }
  }
  if (bytes.length !== MASTER_KEY_LENGTH) {
    bytes.fill(0)
    throw keyError(
      field,
      `must decode to ${MASTER_KEY_LENGTH} bytes (64 hex digits or 44 base64 characters)`,
    )
  }
  return bytes
}

/** How `readMasterKeyFile` treats a key file that group or others may read. */
export interface KeyFileOptions {
  /** Use it anyway (after `onInsecureKeyFile`); by default it is refused. */
  allowInsecureKeyFile?: boolean | undefined
  /** Told about an allowed insecure file (path and mode bits), e.g. to log a warning. */
  onInsecureKeyFile?: ((path: string, mode: number) => void) | undefined
}

/**
 * A master key from a file: exactly 32 raw bytes, or its hex / base64 text form. The file must
 * be readable by its owner only (mode 0600 or 0400): one that group or others can read (or
 * write) is a `key` error naming the file and the fix, unless `allowInsecureKeyFile`. POSIX
 * mode bits only: on Windows the check is skipped.
 */
export function readMasterKeyFile(
  path: string,
  field = MASTER_KEY_FILE_ENV,
  options: KeyFileOptions = {},
): Uint8Array {
  let content: Buffer
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(path).mode & 0o777
      if ((mode & 0o077) !== 0) {
        if (options.allowInsecureKeyFile !== true) {
          throw new VaultError({
            kind: 'key',
            field,
            message: `${field}: the master key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); make it private with: chmod 600 ${path}`,
          })
        }
        options.onInsecureKeyFile?.(path, mode)
      }
    }
    content = readFileSync(path)
  } catch (error) {
    if (VaultError.isInstance(error)) throw error
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new VaultError({
      kind: 'key',
      field,
      message: `${field}: cannot read the master key file ${path} (${code})`,
    })
  }
  try {
    if (content.length === MASTER_KEY_LENGTH) return new Uint8Array(content)
    return parseMasterKey(content.toString('utf8'), `${field} (${path})`)
  } finally {
    content.fill(0)
  }
}

/** A new random master key with its base64 and hex forms, e.g. for `nvisy keys generate`. */
export function generateMasterKey(): { key: Uint8Array; base64: string; hex: string } {
  const key = randomBytes(MASTER_KEY_LENGTH)
  return { key, base64: toBase64(key), hex: bytesToHex(key) }
}

export interface LoadKeyringOptions extends KeyFileOptions {
  /** Defaults to `process.env`. */
  env?: Record<string, string | undefined>
  /** A key file to use instead of the environment's `NVISY_MASTER_KEY` / `NVISY_MASTER_KEY_FILE`. */
  keyFile?: string | undefined
}

/**
 * The master keyring from the environment:
 * - the current key from `keyFile`, else `NVISY_MASTER_KEY` (hex or base64), else the file
 *   named by `NVISY_MASTER_KEY_FILE` (setting both variables is an error);
 * - its key id from `NVISY_MASTER_KEY_ID` (0-255, default 1);
 * - older generations, to open blobs not yet re-encrypted, from
 *   `NVISY_MASTER_KEYS_PREVIOUS` = `id:key,id:key` (keys hex or base64).
 */
export function loadKeyring(options: LoadKeyringOptions = {}): Keyring {
  const env = options.env ?? process.env
  const inline = nonEmpty(env[MASTER_KEY_ENV])
  const file = nonEmpty(env[MASTER_KEY_FILE_ENV])
  let current: Uint8Array
  if (options.keyFile !== undefined) {
    current = readMasterKeyFile(options.keyFile, 'keyFile', options)
  } else if (inline !== undefined && file !== undefined) {
    throw keyError(
      MASTER_KEY_ENV,
      `set either ${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV}, not both`,
    )
  } else if (inline !== undefined) {
    current = parseMasterKey(inline, MASTER_KEY_ENV)
  } else if (file !== undefined) {
    current = readMasterKeyFile(file, MASTER_KEY_FILE_ENV, options)
  } else {
    throw keyError(
      MASTER_KEY_ENV,
      `no master key: set ${MASTER_KEY_ENV} (32 bytes as hex or base64) or ${MASTER_KEY_FILE_ENV}`,
    )
  }
  const currentId = parseKeyId(env[MASTER_KEY_ID_ENV], MASTER_KEY_ID_ENV) ?? DEFAULT_KEY_ID
  const keys = new Map<number, Uint8Array>([[currentId, current]])
  for (const [id, key] of parsePreviousKeys(env[PREVIOUS_MASTER_KEYS_ENV])) {
    if (keys.has(id)) {
      throw configError(
        PREVIOUS_MASTER_KEYS_ENV,
        `key id ${id} appears twice (or is the current id)`,
      )
    }
    keys.set(id, key)
  }
  const keyring = new Keyring({ current: currentId, keys })
  for (const key of keys.values()) key.fill(0)
  return keyring
}

/** The current master key alone (see `loadKeyring`). */
export function loadMasterKey(options: LoadKeyringOptions = {}): Uint8Array {
  const keyring = loadKeyring(options)
  const key = Uint8Array.from(keyring.currentKey)
  keyring.destroy()
  return key
}

function parsePreviousKeys(value: string | undefined): Array<[number, Uint8Array]> {
  const text = nonEmpty(value)
  if (text === undefined) return []
  return text.split(',').map((entry, index) => {
    const field = `${PREVIOUS_MASTER_KEYS_ENV}[${index}]`
    const colon = entry.indexOf(':')
    if (colon < 0) throw configError(field, 'must be id:key (e.g. 1:<base64>)')
    const id = parseKeyId(entry.slice(0, colon), field)
    if (id === undefined) throw configError(field, 'must be id:key (e.g. 1:<base64>)')
    return [id, parseMasterKey(entry.slice(colon + 1), field)]
  })
}

function parseKeyId(value: string | undefined, field: string): number | undefined {
  const text = nonEmpty(value)
  if (text === undefined) return undefined
  if (!/^\d{1,3}$/.test(text)) throw configError(field, 'must be an integer from 0 to 255')
  const id = Number(text)
  assertKeyId(id, field)
  return id
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  return trimmed === undefined || trimmed === '' ? undefined : trimmed
}

function keyError(field: string, rule: string): VaultError {
  return new VaultError({ kind: 'key', field, message: `${field}: ${rule}` })
}
