import { inspect } from 'node:util'
import { configError, VaultError } from './vault-errors.js'

export const MASTER_KEY_LENGTH = 32

/** Validates a 32-byte master key; the error names the field and never shows the bytes. */
export function assertMasterKey(value: unknown, field = 'masterKey'): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new VaultError({
      kind: 'key',
      field,
      message: `${field}: must be a Uint8Array of ${MASTER_KEY_LENGTH} bytes`,
    })
  }
  if (value.length !== MASTER_KEY_LENGTH) {
    throw new VaultError({
      kind: 'key',
      field,
      message: `${field}: must be ${MASTER_KEY_LENGTH} bytes, got ${value.length}`,
    })
  }
}

/** Key ids (master key generations) are one byte in the blob header. */
export function assertKeyId(value: unknown, field = 'keyId'): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw configError(field, 'must be an integer from 0 to 255')
  }
}

export interface KeyringOptions {
  /** The generation new blobs are sealed with. Must be one of `keys`. */
  current: number
  /** Every master key generation that may still be needed to open a blob, by key id. */
  keys: Record<number, Uint8Array> | Iterable<readonly [number, Uint8Array]>
}

/**
 * Master keys by generation (key id 0-255): opens blobs of any known generation and seals new
 * ones with the current one. Keys are copied on construction and never printed by
 * `console.log`, `util.inspect` or `JSON.stringify`.
 */
export class Keyring {
  readonly currentId: number
  readonly #keys = new Map<number, Uint8Array>()

  constructor(options: KeyringOptions) {
    if (typeof options !== 'object' || options === null) {
      throw configError('keyring', 'must be an object { current, keys }')
    }
    const entries =
      Symbol.iterator in Object(options.keys)
        ? [...(options.keys as Iterable<readonly [number, Uint8Array]>)]
        : Object.entries(options.keys ?? {}).map(([id, key]) => [Number(id), key] as const)
    for (const [id, key] of entries) {
      assertKeyId(id, `keyring.keys[${String(id)}]`)
      assertMasterKey(key, `keyring.keys[${id}]`)
      if (this.#keys.has(id)) throw configError(`keyring.keys[${id}]`, 'appears twice')
      this.#keys.set(id, Uint8Array.from(key))
    }
    assertKeyId(options.current, 'keyring.current')
    if (!this.#keys.has(options.current)) {
      throw configError('keyring.current', `key id ${options.current} is not in keyring.keys`)
    }
    this.currentId = options.current
  }

  /** The key ids this keyring holds, ascending. */
  get ids(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b)
  }

  has(id: number): boolean {
    return this.#keys.has(id)
  }

  /** The master key of one generation; a `key` error when this keyring does not hold it. */
  key(id: number): Uint8Array {
    const key = this.#keys.get(id)
    if (key === undefined) {
      throw new VaultError({
        kind: 'key',
        field: 'keyring',
        message: `keyring: no master key with key id ${id} (holds ${this.ids.join(', ')})`,
      })
    }
    return key
  }

  get currentKey(): Uint8Array {
    return this.key(this.currentId)
  }

  /** A new keyring with one more generation, made current unless `current: false`. */
  withKey(id: number, key: Uint8Array, options: { current?: boolean } = {}): Keyring {
    const keys = new Map(this.#keys)
    assertKeyId(id, 'keyId')
    if (keys.has(id)) throw configError('keyId', `key id ${id} is already in the keyring`)
    assertMasterKey(key)
    keys.set(id, key)
    return new Keyring({ current: options.current === false ? this.currentId : id, keys })
  }

  /** Overwrites every held key with zeros; the keyring is unusable afterwards. */
  destroy(): void {
    for (const key of this.#keys.values()) key.fill(0)
    this.#keys.clear()
  }

  toJSON(): { currentId: number; ids: number[] } {
    return { currentId: this.currentId, ids: this.ids }
  }

  [inspect.custom](): string {
    return `Keyring { currentId: ${this.currentId}, ids: [${this.ids.join(', ')}] }`
  }
}
