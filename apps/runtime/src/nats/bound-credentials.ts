import type { KeyPair } from '@nats-io/nkeys'
import type { ConnectionSpec } from '@nvisy/protocol'
import { type Provider, ProviderError } from '@nvisy/provider-core'
import {
  type CredentialPolicy,
  type CredentialScope,
  expectedBinding,
  type OpenedCredentials,
  openSealedCredentials,
} from './credentials.js'
import type { NonceStore } from './nonce-store.js'

/** What opening sealed credentials needs from the dispatcher's state. */
export interface BoundCredentialsContext {
  keys: KeyPair
  policy: CredentialPolicy
  options: { credentialMaxValidityMs?: number }
  nonces: NonceStore
  instanceId: string
}

/** One connection whose sealed credentials (if any) a request or run uses. */
export interface CredentialUse {
  connection: ConnectionSpec
  provider: Provider
  scope: CredentialScope
  /** Names the connection in messages (`node n1 (postgres)`). */
  where: string
  /** JSON pointer of its `sealedCredentials` in the request. */
  path: string
}

/**
 * Open each sealed blob, check its binding (use, provider, destination params, expiry),
 * then claim every nonce in the group's nonce bucket. All are checked before any nonce
 * is claimed; any refusal throws an `auth` error for the reply, naming the blob's path.
 */
export async function openBound(
  context: BoundCredentialsContext,
  uses: CredentialUse[],
  use: string,
): Promise<(OpenedCredentials | undefined)[]> {
  const { keys, policy, options, nonces, instanceId } = context
  const opened = uses.map(({ connection, provider, scope, where, path }) =>
    connection.sealedCredentials === undefined
      ? undefined
      : openSealedCredentials(
          keys,
          policy.serverPublicKey,
          connection.sealedCredentials,
          expectedBinding(scope, {
            provider: provider.id,
            paramsSchema: provider.definition.params,
            params: connection.params,
          }),
          where,
          path,
          { maxValidityMs: options.credentialMaxValidityMs },
        ),
  )
  for (const [index, entry] of opened.entries()) {
    if (entry === undefined) continue
    const { where, path } = uses[index]!
    const duplicate = opened.findIndex((other) => other?.binding.nonce === entry.binding.nonce)
    if (duplicate !== index || !(await nonces.claim(entry.binding.nonce, { use, instanceId }))) {
      const message =
        'they were opened before (replay): every sealed blob is used once; the server must seal new credentials for each run or request'
      throw new ProviderError({
        kind: 'auth',
        message: `${where}: sealed credentials refused: ${message}`,
        issues: [{ path, rule: 'replay', message }],
      })
    }
  }
  return opened
}
