import { createHash } from 'node:crypto'
import type { KV } from '@nats-io/kv'
import { errorMessage, ProviderError } from '@nvisy/provider-core'

const encoder = new TextEncoder()

/** Records each sealed-credentials nonce the first time it is opened, for every instance. */
export interface NonceStore {
  /** True the first time a nonce is claimed; false when any instance has claimed it before. */
  claim(nonce: string, info: { use: string; instanceId: string }): Promise<boolean>
}

/**
 * Nonces in a JetStream key-value bucket shared by the queue group. `create()` succeeds only
 * when the key does not exist, so two instances that open the same blob at the same time
 * cannot both win. Keys are the hex SHA-256 of the nonce; the bucket's TTL (max validity of
 * a blob plus the clock skew) forgets a nonce only after any blob holding it has expired.
 */
export class KvNonceStore implements NonceStore {
  readonly #kv: KV

  constructor(kv: KV) {
    this.#kv = kv
  }

  static key(nonce: string): string {
    return `n.${createHash('sha256').update(nonce).digest('hex')}`
  }

  async claim(nonce: string, info: { use: string; instanceId: string }): Promise<boolean> {
    const key = KvNonceStore.key(nonce)
    const value = encoder.encode(JSON.stringify({ ...info, at: new Date().toISOString() }))
    try {
      await this.#kv.create(key, value)
      return true
    } catch (error) {
      // create() fails when the key exists (the nonce was opened before), or when the
      // bucket cannot be reached: tell them apart, and fail closed either way.
      const existing = await this.#kv.get(key).catch(() => null)
      if (existing && existing.operation === 'PUT') return false
      throw new ProviderError({
        kind: 'transient',
        operation: 'credentials',
        message: `cannot record the sealed credentials nonce in the nonce bucket, so the credentials are not used: ${errorMessage(error)}`,
        cause: error,
      })
    }
  }
}
