import { randomBytes, randomUUID } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  bytesToHex,
  DEFAULT_KEY_ID,
  decryptCredentials,
  decryptCredentialsJson,
  deriveWorkspaceKey,
  encryptCredentials,
  fromBase64,
  Keyring,
  MIN_BLOB_LENGTH,
  parseBlobHeader,
  reencrypt,
  toBase64,
  utf8ToBytes,
  VaultError,
  type VaultErrorKind,
} from './index.js'

const masterKey = new Uint8Array(randomBytes(32))
const workspaceId = randomUUID()
const connectionId = randomUUID()
const context = { masterKey, workspaceId, connectionId }
const SECRET = 'sup3r-s3cret-pa55word'
const credentials = { user: 'svc', password: SECRET }

function failure(run: () => unknown): VaultError {
  try {
    run()
  } catch (error) {
    if (!VaultError.isInstance(error)) throw error
    return error
  }
  throw new Error('expected a VaultError, nothing was thrown')
}

function expectKind(run: () => unknown, kind: VaultErrorKind, field?: string): VaultError {
  const error = failure(run)
  expect(error.kind).toBe(kind)
  if (field !== undefined) expect(error.field).toBe(field)
  return error
}

/** The message and stack must not contain the master key (hex or base64) nor the plaintext. */
function expectNoSecrets(error: Error, ...secrets: string[]): void {
  const text = `${error.message}\n${error.stack ?? ''}\n${String(error.cause ?? '')}`
  for (const secret of [bytesToHex(masterKey), toBase64(masterKey), SECRET, ...secrets]) {
    expect(text).not.toContain(secret)
  }
}

describe('round trip', () => {
  it('seals bytes and JSON, opens them with the same workspace and connection', () => {
    const bytes = utf8ToBytes('raw bytes')
    expect(decryptCredentials(encryptCredentials(bytes, context), context)).toEqual(bytes)
    const blob = encryptCredentials(credentials, context)
    expect(decryptCredentialsJson(blob, context)).toEqual(credentials)
    expect(decryptCredentialsJson(toBase64(blob), context)).toEqual(credentials)
    expect(new TextDecoder().decode(blob)).not.toContain(SECRET)
  })

  it('lays out version, key id, nonce, ciphertext and tag', () => {
    const plaintext = utf8ToBytes('12345')
    const blob = encryptCredentials(plaintext, { ...context, keyId: 7 })
    expect(blob.length).toBe(MIN_BLOB_LENGTH + plaintext.length)
    expect(blob[0]).toBe(1)
    expect(blob[1]).toBe(7)
    const header = parseBlobHeader(blob)
    expect(header).toMatchObject({ formatVersion: 1, keyId: 7, ciphertextLength: 5 })
    expect(header.nonce).toEqual(blob.slice(2, 26))
    expect(parseBlobHeader(encryptCredentials(plaintext, context)).keyId).toBe(DEFAULT_KEY_ID)
  })

  it('uses a fresh random nonce each time', () => {
    const a = encryptCredentials(credentials, context)
    const b = encryptCredentials(credentials, context)
    expect(bytesToHex(a)).not.toBe(bytesToHex(b))
    expect(bytesToHex(parseBlobHeader(a).nonce)).not.toBe(bytesToHex(parseBlobHeader(b).nonce))
  })

  it('treats UUIDs case-insensitively (they are bound as their 16 bytes)', () => {
    const blob = encryptCredentials(credentials, context)
    expect(
      decryptCredentialsJson(blob, {
        masterKey,
        workspaceId: workspaceId.toUpperCase(),
        connectionId: connectionId.toUpperCase(),
      }),
    ).toEqual(credentials)
  })

  it('derives different workspace keys per workspace and per master key', () => {
    const a = bytesToHex(deriveWorkspaceKey(masterKey, workspaceId))
    expect(bytesToHex(deriveWorkspaceKey(masterKey, randomUUID()))).not.toBe(a)
    expect(bytesToHex(deriveWorkspaceKey(new Uint8Array(randomBytes(32)), workspaceId))).not.toBe(a)
  })
})

describe('binding', () => {
  const blob = encryptCredentials(credentials, context)

  it('fails with integrity for another workspace', () => {
    const error = expectKind(
      () => decryptCredentials(blob, { ...context, workspaceId: randomUUID() }),
      'integrity',
    )
    expectNoSecrets(error)
  })

  it('fails with integrity for another connection', () => {
    expectKind(
      () => decryptCredentials(blob, { ...context, connectionId: randomUUID() }),
      'integrity',
    )
  })

  it('fails with integrity for another master key', () => {
    const other = new Uint8Array(randomBytes(32))
    const error = expectKind(
      () => decryptCredentials(blob, { ...context, masterKey: other }),
      'integrity',
    )
    expectNoSecrets(error, bytesToHex(other), toBase64(other))
  })

  it('fails with integrity when the key id byte is changed (the header is authenticated)', () => {
    const changed = blob.slice()
    changed[1] = 2
    expectKind(() => decryptCredentials(changed, context), 'integrity')
  })
})

describe('tampering', () => {
  it('rejects every single-bit flip at every byte position, without leaking secrets', () => {
    const blob = encryptCredentials(utf8ToBytes(SECRET), context)
    for (let position = 0; position < blob.length; position++) {
      for (const bit of [0, 7]) {
        const tampered = blob.slice()
        tampered[position]! ^= 1 << bit
        const error = failure(() => decryptCredentials(tampered, context))
        // Byte 0 is the format version: a changed one is an unknown format, the rest fail auth.
        expect(error.kind).toBe(position === 0 ? 'format' : 'integrity')
        expect(error.message).toMatch(
          position === 0 ? /unknown format version/ : /authentication failed/,
        )
        expectNoSecrets(error)
      }
    }
  })

  it('gives format errors for truncated, empty and unknown-version blobs', () => {
    const blob = encryptCredentials(credentials, context)
    for (const length of [0, 1, 2, 26, MIN_BLOB_LENGTH - 1]) {
      const error = expectKind(
        () => decryptCredentials(blob.slice(0, length), context),
        'format',
        'blob',
      )
      expect(error.message).toMatch(length === 0 ? /empty/ : /truncated/)
    }
    // Cut inside the ciphertext/tag but above the minimum: the tag no longer verifies.
    expectKind(() => decryptCredentials(blob.slice(0, blob.length - 1), context), 'integrity')
    for (const version of [0, 3, 255]) {
      const other = blob.slice()
      other[0] = version
      const error = expectKind(() => decryptCredentials(other, context), 'format', 'blob')
      expect(error.message).toContain(`unknown format version ${version}`)
    }
  })

  it('rejects malformed base64 with a config error', () => {
    expectKind(() => decryptCredentials('not base64!!', context), 'config', 'blob')
  })
})

describe('keyring and re-encryption', () => {
  const oldKey = new Uint8Array(randomBytes(32))
  const newKey = new Uint8Array(randomBytes(32))

  it('re-encrypts under a new master key; the old key no longer opens the new blob', () => {
    const blob = encryptCredentials(credentials, { ...context, masterKey: oldKey, keyId: 1 })
    const rotated = reencrypt(blob, { from: oldKey, to: newKey, workspaceId, connectionId })
    expect(parseBlobHeader(rotated).keyId).toBe(2)
    expect(decryptCredentialsJson(rotated, { ...context, masterKey: newKey })).toEqual(credentials)
    expectKind(() => decryptCredentials(rotated, { ...context, masterKey: oldKey }), 'integrity')
    expectKind(() => decryptCredentials(blob, { ...context, masterKey: newKey }), 'integrity')
    expect(
      parseBlobHeader(
        reencrypt(blob, { from: oldKey, to: newKey, toKeyId: 9, workspaceId, connectionId }),
      ).keyId,
    ).toBe(9)
  })

  it('re-encryption needs the right workspace and connection', () => {
    const blob = encryptCredentials(credentials, { ...context, masterKey: oldKey })
    expectKind(
      () => reencrypt(blob, { from: oldKey, to: newKey, workspaceId, connectionId: randomUUID() }),
      'integrity',
    )
  })

  it('opens blobs of every known generation and seals with the current one', () => {
    const keyring = new Keyring({ current: 2, keys: { 1: oldKey, 2: newKey } })
    const old = encryptCredentials(credentials, { ...context, masterKey: oldKey, keyId: 1 })
    const fresh = encryptCredentials(credentials, { workspaceId, connectionId, keyring })
    expect(parseBlobHeader(fresh).keyId).toBe(2)
    expect(decryptCredentialsJson(old, { workspaceId, connectionId, keyring })).toEqual(credentials)
    expect(decryptCredentialsJson(fresh, { workspaceId, connectionId, keyring })).toEqual(
      credentials,
    )
    expect(decryptCredentialsJson(fresh, { ...context, masterKey: newKey })).toEqual(credentials)

    const rotated = reencrypt(old, { from: keyring, to: keyring, workspaceId, connectionId })
    expect(parseBlobHeader(rotated).keyId).toBe(2)
    const withoutOld = new Keyring({ current: 2, keys: { 2: newKey } })
    expect(
      decryptCredentialsJson(rotated, { workspaceId, connectionId, keyring: withoutOld }),
    ).toEqual(credentials)
    const error = expectKind(
      () => decryptCredentials(old, { workspaceId, connectionId, keyring: withoutOld }),
      'key',
      'keyring',
    )
    expect(error.message).toContain('key id 1')
  })

  it('a keyring never prints its keys', () => {
    const keyring = new Keyring({ current: 1, keys: [[1, oldKey]] })
    for (const text of [inspect(keyring), JSON.stringify(keyring), String(keyring)]) {
      expect(text).not.toContain(bytesToHex(oldKey))
      expect(text).not.toContain(toBase64(oldKey))
    }
    expect(JSON.parse(JSON.stringify(keyring))).toEqual({ currentId: 1, ids: [1] })
    const next = keyring.withKey(2, newKey)
    expect(next.currentId).toBe(2)
    expect(next.ids).toEqual([1, 2])
    expect(keyring.withKey(2, newKey, { current: false }).currentId).toBe(1)
  })

  it('validates keyrings', () => {
    expectKind(() => new Keyring({ current: 3, keys: { 1: oldKey } }), 'config', 'keyring.current')
    expectKind(
      () => new Keyring({ current: 1, keys: { 1: oldKey.slice(0, 16) } }),
      'key',
      'keyring.keys[1]',
    )
    expectKind(() => new Keyring({ current: 300, keys: { 300: oldKey } }), 'config')
  })
})

describe('input validation', () => {
  const plaintext = utf8ToBytes('x')

  it('names the field and the rule', () => {
    let error = expectKind(
      () => encryptCredentials(plaintext, { ...context, masterKey: masterKey.slice(0, 31) }),
      'key',
      'masterKey',
    )
    expect(error.message).toBe('masterKey: must be 32 bytes, got 31')
    error = expectKind(
      () => encryptCredentials(plaintext, { ...context, workspaceId: 'not-a-uuid' }),
      'config',
      'workspaceId',
    )
    expect(error.message).toMatch(/^workspaceId: must be a UUID/)
    expectKind(
      () => encryptCredentials(plaintext, { ...context, connectionId: `${connectionId}0` }),
      'config',
      'connectionId',
    )
    expectKind(
      () => encryptCredentials(plaintext, { ...context, nonce: new Uint8Array(12) }),
      'config',
      'nonce',
    )
    expectKind(() => encryptCredentials(plaintext, { ...context, keyId: 256 }), 'config', 'keyId')
    expectKind(
      () => encryptCredentials(plaintext, { workspaceId, connectionId }),
      'key',
      'masterKey',
    )
    expectKind(
      () =>
        encryptCredentials(plaintext, {
          ...context,
          keyring: new Keyring({ current: 1, keys: { 1: masterKey } }),
        }),
      'config',
      'masterKey',
    )
    expectKind(() => encryptCredentials('text' as any, context), 'config', 'plaintext')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expectKind(() => encryptCredentials(cyclic, context), 'config', 'plaintext')
    expectKind(
      () =>
        reencrypt(encryptCredentials(plaintext, context), {
          from: masterKey,
          to: new Uint8Array(3),
          workspaceId,
          connectionId,
        }),
      'key',
      'to',
    )
  })

  it('reports non-JSON plaintext as a format error, without content', () => {
    const blob = encryptCredentials(utf8ToBytes(`{${SECRET}`), context)
    const error = expectKind(() => decryptCredentialsJson(blob, context), 'format')
    expectNoSecrets(error)
  })

  it('is recognised across package copies through the Symbol.for marker', () => {
    const foreign = { [Symbol.for('nvisy.vault.VaultError')]: true, kind: 'format' }
    expect(VaultError.isInstance(foreign)).toBe(true)
    expect(VaultError.isInstance(new Error('x'))).toBe(false)
  })

  it('decodes base64 strictly', () => {
    expect(fromBase64('AQI=')).toEqual(new Uint8Array([1, 2]))
    expect(fromBase64('AQI')).toEqual(new Uint8Array([1, 2]))
    expectKind(() => fromBase64('A QI='), 'config')
    expectKind(() => fromBase64('A'), 'config')
  })
})
