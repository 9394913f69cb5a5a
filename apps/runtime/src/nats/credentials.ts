import { randomBytes } from 'node:crypto'
import { createCurve, fromCurveSeed, type KeyPair } from '@nats-io/nkeys'
import {
  type ConnectionSpec,
  CREDENTIAL_CLOCK_SKEW_MS,
  type CredentialBinding,
  DEFAULT_CREDENTIAL_MAX_VALIDITY_MS,
  SEALED_CREDENTIALS_VERSION,
  SealedCredentialsPlaintextSchema,
  validateMessage,
} from '@nvisy/protocol'
import {
  canonicalJson,
  destinationDigest,
  ProviderError,
  type TSchema,
  type ValidationIssue,
} from '@nvisy/provider-core'

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

// Binding -------------------------------------------------------------------------------

/** The use a blob is sealed for: one node of one run, or one check/discover request. */
export type CredentialScope =
  | { operation: 'run'; runId: string; nodeId: string }
  | { operation: 'check' | 'discover'; requestId: string; connectionId?: string }

/** What a runtime expects a blob to be bound to: the request it came in. */
export type ExpectedBinding = CredentialScope & {
  provider: string
  /** `destinationDigest(paramsSchema, params)` of the request's connection. */
  destination: string
}

export interface BindingInput {
  /** Provider id. */
  provider: string
  /** The provider's params schema (TypeBox, or the catalog's JSON Schema: the marks are kept). */
  paramsSchema: TSchema | Record<string, unknown>
  /** The connection params exactly as they are sent in the request. */
  params: unknown
}

/** The binding fields other than expiry and nonce, for one use. */
export function expectedBinding(scope: CredentialScope, input: BindingInput): ExpectedBinding {
  return {
    ...scope,
    provider: input.provider,
    destination: destinationDigest(input.paramsSchema as TSchema, input.params ?? {}),
  }
}

export interface SealOptions extends BindingInput {
  /** Validity from `now`; default 5 minutes (a runtime refuses more than its max, 15 min by default). */
  ttlMs?: number
  /** Unix ms; default `Date.now()`. */
  now?: number
  /** 16 bytes; random by default. Fixed only for test vectors. */
  nonce?: Uint8Array
  /** The xkey box nonce (24 bytes); random by default. Fixed only for test vectors. */
  boxNonce?: Uint8Array
}

/** The complete binding a server puts in a v2 blob. */
export function credentialBinding(scope: CredentialScope, options: SealOptions): CredentialBinding {
  const nonce = options.nonce ?? randomBytes(16)
  if (nonce.length !== 16) throw new RangeError('the binding nonce must be 16 bytes')
  const { destination, ...rest } = expectedBinding(scope, options)
  return {
    ...rest,
    destination,
    expiresAt: (options.now ?? Date.now()) + (options.ttlMs ?? 5 * 60_000),
    nonce: Buffer.from(nonce).toString('base64'),
  } as CredentialBinding
}

/**
 * The exact bytes a server seals (v2): canonical JSON (keys sorted at every level, no white
 * space) of `{ binding, credentials, v: 2 }`.
 */
export function sealedPlaintext(binding: CredentialBinding, credentials: unknown): Uint8Array {
  return encoder.encode(
    canonicalJson({ v: SEALED_CREDENTIALS_VERSION, binding, credentials: credentials ?? {} }),
  )
}

/**
 * What the server does before it sends a connection (the reference for the Rust server):
 * bind `credentials` to one use (`scope`), the provider, the destination params, an expiry
 * and a random nonce, and seal them with the server's xkey to the runtime's public key.
 * Returns the base64 text for `connection.sealedCredentials`.
 */
export function sealCredentials(
  serverKey: KeyPair,
  runtimePublicKey: string,
  credentials: Record<string, unknown>,
  scope: CredentialScope,
  options: SealOptions,
): string {
  const plaintext = sealedPlaintext(credentialBinding(scope, options), credentials)
  try {
    return Buffer.from(serverKey.seal(plaintext, runtimePublicKey, options.boxNonce)).toString(
      'base64',
    )
  } finally {
    plaintext.fill(0)
  }
}

// Opening -------------------------------------------------------------------------------

export interface OpenPolicy {
  /** Unix ms; default `Date.now()`. */
  now?: number
  /** Longest accepted validity (`expiresAt - now`); default 15 minutes, plus the clock skew. */
  maxValidityMs?: number
}

export interface OpenedCredentials {
  credentials: Record<string, unknown>
  binding: CredentialBinding
}

function refused(where: string, path: string, rule: string, message: string): ProviderError {
  return new ProviderError({
    kind: 'auth',
    message: `${where}: sealed credentials refused: ${message}`,
    issues: [{ path, rule, message }],
  })
}

function describeScope(scope: CredentialScope): string {
  return scope.operation === 'run'
    ? `node ${scope.nodeId} of run ${scope.runId}`
    : `${scope.operation} request ${scope.requestId}${scope.connectionId === undefined ? '' : ` (connection ${scope.connectionId})`}`
}

/**
 * Open a v2 blob with the runtime key, accepting only what the configured server sealed, for
 * exactly the use `expected` describes, before its expiry. The nonce is NOT recorded here:
 * the caller claims `binding.nonce` (replay protection) before it uses the credentials.
 * Every failure is an `auth` error (path `path`) that never contains sealed or opened bytes.
 */
export function openSealedCredentials(
  runtimeKey: KeyPair,
  serverPublicKey: string | undefined,
  sealed: string,
  expected: ExpectedBinding,
  where: string,
  path = '/connection/sealedCredentials',
  policy: OpenPolicy = {},
): OpenedCredentials {
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
    throw refused(
      where,
      path,
      'sealed',
      "they could not be opened: they were not sealed by the configured server key to this runtime's public key",
    )
  }
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(opened))
  } catch {
    value = undefined
  } finally {
    opened.fill(0)
  }
  const version = (value as { v?: unknown } | null)?.v
  if (
    value === null ||
    typeof value !== 'object' ||
    Array.isArray(value) ||
    version === undefined
  ) {
    throw refused(
      where,
      path,
      'version',
      'they are unbound (v1: bare credentials JSON); the server must seal v2 credentials bound to the run node or request, provider, destination params, expiry and nonce (docs/protocol.md, "Sealed credentials (v2)")',
    )
  }
  if (version !== SEALED_CREDENTIALS_VERSION) {
    throw refused(
      where,
      path,
      'version',
      `sealed credentials version is not supported: this runtime opens v${SEALED_CREDENTIALS_VERSION}`,
    )
  }
  const checked = validateMessage(SealedCredentialsPlaintextSchema, value)
  if (!checked.ok) {
    // Only the paths and rules: the messages of a schema never quote values, but be sure.
    const fields = checked.issues.map((i: ValidationIssue) => `${i.path} (${i.rule})`).join(', ')
    throw refused(where, path, 'binding', `the v2 plaintext is malformed at ${fields}`)
  }
  const { binding, credentials } = checked.value
  const { expiresAt: _e, nonce: _n, ...actual } = binding
  const mismatched = Object.keys({ ...expected, ...actual }).filter(
    (key) =>
      canonicalJson((expected as Record<string, unknown>)[key]) !==
      canonicalJson((actual as Record<string, unknown>)[key]),
  )
  if (mismatched.length > 0) {
    const label = (key: string) => (key === 'destination' ? 'destination params' : key)
    throw refused(
      where,
      path,
      'binding',
      `they are bound to another use (${mismatched.map(label).join(', ')} differ${mismatched.length === 1 ? 's' : ''}): they were sealed for another ${mismatched.includes('destination') ? 'destination (host, port, endpoint... the params marked Destination)' : 'request'}, not for ${describeScope(expected)} of provider ${expected.provider}`,
    )
  }
  const now = policy.now ?? Date.now()
  if (binding.expiresAt <= now) {
    throw refused(
      where,
      path,
      'expired',
      `they expired at ${new Date(binding.expiresAt).toISOString()} (runtime time ${new Date(now).toISOString()})`,
    )
  }
  const maxValidity =
    (policy.maxValidityMs ?? DEFAULT_CREDENTIAL_MAX_VALIDITY_MS) + CREDENTIAL_CLOCK_SKEW_MS
  if (binding.expiresAt - now > maxValidity) {
    throw refused(
      where,
      path,
      'expiresAt',
      `they are valid for too long: expiresAt may be at most ${maxValidity} ms ahead of the runtime's clock`,
    )
  }
  return { credentials: credentials as Record<string, unknown>, binding }
}

// Policy --------------------------------------------------------------------------------

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

/** The provider input of a connection whose sealed credentials (if any) were opened already. */
export function connectionInput(
  connection: ConnectionSpec,
  opened: OpenedCredentials | undefined,
): { credentials: Record<string, unknown>; params: Record<string, unknown> } {
  const credentials =
    opened !== undefined
      ? structuredClone(opened.credentials)
      : (structuredClone(connection.credentials) ?? {})
  return { credentials, params: structuredClone(connection.params) }
}
