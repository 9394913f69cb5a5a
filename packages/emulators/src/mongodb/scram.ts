// The server side of SCRAM-SHA-256 (RFC 7677), as mongod runs it over saslStart and
// saslContinue. Passwords are prepared with NFKC, which equals SASLprep for the
// passwords tests use.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { CommandError } from './command-error.js'

const ITERATIONS = 15_000

export const authenticationFailed = () =>
  new CommandError(18, 'AuthenticationFailed', 'Authentication failed.')

interface Credential {
  salt: Buffer
  storedKey: Buffer
  serverKey: Buffer
}

const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()

export class ScramUsers {
  private readonly credentials = new Map<string, Credential>()

  constructor(users: Record<string, string>) {
    for (const [name, password] of Object.entries(users)) {
      const salt = randomBytes(28)
      const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256')
      const clientKey = hmac(salted, 'Client Key')
      this.credentials.set(name, {
        salt,
        storedKey: createHash('sha256').update(clientKey).digest(),
        serverKey: hmac(salted, 'Server Key'),
      })
    }
  }

  has(name: string): boolean {
    return this.credentials.has(name)
  }

  get(name: string): Credential | undefined {
    return this.credentials.get(name)
  }
}

function parseAttributes(text: string): Map<string, string> {
  const attributes = new Map<string, string>()
  for (const part of text.split(',')) {
    const at = part.indexOf('=')
    if (at > 0) attributes.set(part.slice(0, at), part.slice(at + 1))
  }
  return attributes
}

/** One SCRAM conversation on one connection. */
export class ScramConversation {
  private clientFirstBare = ''
  private serverFirst = ''
  private nonce = ''
  private user = ''

  constructor(private readonly users: ScramUsers) {}

  /** saslStart: the client-first message; returns the server-first message. */
  start(payload: Buffer): Buffer {
    const text = payload.toString('utf8')
    // gs2 header "n,," then the bare message "n=user,r=nonce".
    const parts = text.split(',')
    if (parts.length < 4 || parts[0] !== 'n') throw authenticationFailed()
    this.clientFirstBare = parts.slice(2).join(',')
    const attributes = parseAttributes(this.clientFirstBare)
    this.user = (attributes.get('n') ?? '').replace(/=2C/g, ',').replace(/=3D/g, '=')
    const clientNonce = attributes.get('r')
    if (!clientNonce) throw authenticationFailed()
    // An unknown user gets a made-up salt so the reply does not reveal who exists.
    const credential = this.users.get(this.user)
    const salt =
      credential?.salt ?? createHash('sha256').update(`nvisy:${this.user}`).digest().subarray(0, 28)
    this.nonce = clientNonce + randomBytes(24).toString('base64')
    this.serverFirst = `r=${this.nonce},s=${salt.toString('base64')},i=${ITERATIONS}`
    return Buffer.from(this.serverFirst, 'utf8')
  }

  /** saslContinue: the client-final message with the proof; returns the server signature. */
  finish(payload: Buffer): { user: string; reply: Buffer } {
    const text = payload.toString('utf8')
    const attributes = parseAttributes(text)
    const proof = attributes.get('p')
    const credential = this.users.get(this.user)
    if (!proof || attributes.get('r') !== this.nonce || !credential) throw authenticationFailed()
    const withoutProof = text.slice(0, text.lastIndexOf(',p='))
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`
    const signature = hmac(credential.storedKey, authMessage)
    const given = Buffer.from(proof, 'base64')
    if (given.length !== signature.length) throw authenticationFailed()
    const clientKey = Buffer.alloc(signature.length)
    for (let i = 0; i < signature.length; i++) clientKey[i] = given[i]! ^ signature[i]!
    const storedKey = createHash('sha256').update(clientKey).digest()
    if (!timingSafeEqual(storedKey, credential.storedKey)) throw authenticationFailed()
    const serverSignature = hmac(credential.serverKey, authMessage).toString('base64')
    return { user: this.user, reply: Buffer.from(`v=${serverSignature}`, 'utf8') }
  }
}
