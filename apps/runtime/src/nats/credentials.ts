import { createCurve, fromCurveSeed, type KeyPair } from '@nats-io/nkeys'
import type { ConnectionSpec } from '@nvisy/protocol'
import { ProviderError } from '@nvisy/provider-core'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The runtime's xkey (curve) key pair, from a seed (`SX...`) or freshly generated. */
export function runtimeKeyPair(seed?: string): KeyPair {
  if (seed === undefined) return createCurve()
  try {
    return fromCurveSeed(encoder.encode(seed))
  } catch {
    // The seed itself is never repeated in the message.
    throw new ProviderError({
      kind: 'config',
      message:
        'runtimeSeed is not a valid xkey (curve) seed: expected an "SX..." seed from createCurve().getSeed()',
    })
  }
}

/** True for an xkey public key (`X` followed by 55 base32 characters). */
export function isCurvePublicKey(key: string): boolean {
  return /^X[A-Z2-7]{55}$/.test(key)
}

/**
 * Seal a credentials object to a runtime: what the server does before it sends a connection.
 * Returns the base64 text for `connection.sealedCredentials`.
 */
export function sealCredentials(
  senderKey: KeyPair,
  runtimePublicKey: string,
  credentials: unknown,
): string {
  const sealed = senderKey.seal(encoder.encode(JSON.stringify(credentials)), runtimePublicKey)
  return Buffer.from(sealed).toString('base64')
}

/**
 * Open `sealedCredentials` with the runtime key, accepting only what the configured server
 * sealed. Any failure is an `auth` error that never contains the sealed or opened bytes.
 */
export function openSealedCredentials(
  runtimeKey: KeyPair,
  serverPublicKey: string | undefined,
  sealed: string,
  where: string,
): Record<string, unknown> {
  if (!serverPublicKey) {
    throw new ProviderError({
      kind: 'config',
      message: `${where}: sealed credentials cannot be opened: this runtime has no server public key configured (serverPublicKey)`,
    })
  }
  let opened: Uint8Array | null = null
  try {
    opened = runtimeKey.open(Buffer.from(sealed, 'base64'), serverPublicKey)
  } catch {
    opened = null
  }
  if (!opened) {
    throw new ProviderError({
      kind: 'auth',
      message: `${where}: sealed credentials could not be opened: they were not sealed by the configured server key to this runtime's public key`,
    })
  }
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(opened))
  } catch {
    value = undefined
  }
  opened.fill(0)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProviderError({
      kind: 'config',
      message: `${where}: sealed credentials must hold a JSON object`,
    })
  }
  return value as Record<string, unknown>
}

export interface CredentialPolicy {
  serverPublicKey: string | undefined
  allowPlainCredentials: boolean
}

/**
 * Why a connection's credentials are refused before anything is opened, as issues under
 * `path` (the connection's JSON pointer); empty when they are acceptable.
 */
export function credentialIssues(
  connection: ConnectionSpec,
  policy: CredentialPolicy,
  path: string,
): { path: string; rule: string; message: string }[] {
  const issues: { path: string; rule: string; message: string }[] = []
  if (connection.credentials !== undefined && connection.sealedCredentials !== undefined) {
    issues.push({
      path: `${path}/credentials`,
      rule: 'oneOf',
      message: 'give either credentials or sealedCredentials, not both',
    })
  } else if (connection.credentials !== undefined && !policy.allowPlainCredentials) {
    issues.push({
      path: `${path}/credentials`,
      rule: 'sealed',
      message:
        "plain credentials are refused: seal them to the runtime's public key into sealedCredentials (plain credentials need the runtime's dev flag)",
    })
  } else if (connection.sealedCredentials !== undefined && !policy.serverPublicKey) {
    issues.push({
      path: `${path}/sealedCredentials`,
      rule: 'serverPublicKey',
      message:
        'this runtime has no server public key configured, so it cannot open sealed credentials',
    })
  }
  return issues
}

/** The provider input of a connection: plain or opened credentials, and the params. */
export function resolveConnectionInput(
  connection: ConnectionSpec,
  runtimeKey: KeyPair,
  policy: CredentialPolicy,
  where: string,
): { credentials: Record<string, unknown>; params: Record<string, unknown> } {
  const issues = credentialIssues(connection, policy, '/connection')
  if (issues.length > 0) {
    throw new ProviderError({
      kind: 'config',
      message: `${where}: ${issues.map((i) => i.message).join('; ')}`,
      issues,
    })
  }
  const credentials =
    connection.sealedCredentials !== undefined
      ? openSealedCredentials(
          runtimeKey,
          policy.serverPublicKey,
          connection.sealedCredentials,
          where,
        )
      : (structuredClone(connection.credentials) ?? {})
  return { credentials, params: structuredClone(connection.params) }
}
