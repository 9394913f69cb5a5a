/**
 * What went wrong, so a caller can react without parsing messages:
 * - `config`: an argument is missing or malformed (the message names the field and the rule).
 * - `key`: a master key is unusable (wrong length, unparseable, missing) or a keyring lacks the
 *   key generation a blob was sealed with.
 * - `format`: bytes that are not a blob of a known layout (too short, unknown format version),
 *   or a store file that is not what this package writes.
 * - `integrity`: authentication failed: wrong master key, workspace or connection, or the blob
 *   was altered. Deliberately one kind: the cause cannot (and must not) be told apart.
 * - `not_found` / `conflict`: the local connection store has no such id / already has it.
 */
export const VAULT_ERROR_KINDS = [
  'config',
  'key',
  'format',
  'integrity',
  'not_found',
  'conflict',
] as const

export type VaultErrorKind = (typeof VAULT_ERROR_KINDS)[number]

export interface VaultErrorOptions {
  kind: VaultErrorKind
  message: string
  /** The argument or setting at fault, e.g. `workspaceId`, `masterKey`, `NVISY_MASTER_KEY`. */
  field?: string | undefined
  cause?: unknown
}

const MARKER = Symbol.for('nvisy.vault.VaultError')

/** Every error this package throws. Messages never contain key material or plaintext. */
export class VaultError extends Error {
  readonly [MARKER] = true
  readonly kind: VaultErrorKind
  readonly field: string | undefined

  constructor(options: VaultErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'VaultError'
    this.kind = options.kind
    this.field = options.field
  }

  /** True for a VaultError from any copy of this package. */
  static isInstance(value: unknown): value is VaultError {
    return typeof value === 'object' && value !== null && (value as any)[MARKER] === true
  }
}

export function configError(field: string, rule: string): VaultError {
  return new VaultError({ kind: 'config', field, message: `${field}: ${rule}` })
}
