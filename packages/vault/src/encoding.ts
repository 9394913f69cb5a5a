import { configError, VaultError } from './vault-errors.js'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const HEX_PATTERN = /^(?:[0-9a-f]{2})*$/i
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/

/** True for a UUID in the canonical 8-4-4-4-12 hex form (any version, either case). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value)
}

/** The 16 bytes of a UUID string, in the order they are written (RFC 9562 network order). */
export function uuidToBytes(value: unknown, field = 'uuid'): Uint8Array {
  if (typeof value !== 'string') throw configError(field, 'must be a UUID string')
  if (!UUID_PATTERN.test(value)) {
    throw configError(field, 'must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx')
  }
  return hexToBytes(value.replaceAll('-', ''), field)
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Strict hex decoding (even length, hex digits only). */
export function hexToBytes(hex: string, field = 'hex'): Uint8Array {
  if (typeof hex !== 'string' || !HEX_PATTERN.test(hex)) {
    throw configError(field, 'must be an even-length hex string')
  }
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/**
 * Strict base64 decoding: standard alphabet with padding, or the URL-safe alphabet without
 * padding. Whitespace is not accepted (Node's lenient decoder would silently skip garbage).
 */
export function fromBase64(text: string, field = 'base64'): Uint8Array {
  if (typeof text !== 'string') throw configError(field, 'must be a base64 string')
  if (BASE64_PATTERN.test(text)) return new Uint8Array(Buffer.from(text, 'base64'))
  if (BASE64URL_PATTERN.test(text) && text.length % 4 !== 1) {
    return new Uint8Array(Buffer.from(text, 'base64url'))
  }
  throw configError(field, 'must be base64 (standard alphabet with padding, or base64url)')
}

export function utf8ToBytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true })

export function bytesToUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes)
  } catch {
    throw new VaultError({ kind: 'format', message: 'decrypted plaintext is not valid UTF-8' })
  }
}
