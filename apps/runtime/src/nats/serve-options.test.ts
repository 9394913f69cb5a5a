import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProviderError } from '@nvisy/provider-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  credentialMaxValidityMs,
  dispatcherNaming,
  natsConnectionOptions,
  secondsFlag,
} from './serve-options.js'

const SECRET = 'hunter2-canary-7f3a'
const CREDS = `-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJ4In0.c2ln
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4
------END USER NKEY SEED------
`

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ProviderError)
  return error as ProviderError
}

describe('natsConnectionOptions', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nvisy-serve-options-'))
    await writeFile(join(dir, 'user.creds'), CREDS)
    await writeFile(join(dir, 'not.creds'), `just a ${SECRET}\n`)
    await writeFile(
      join(dir, 'ca.pem'),
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    )
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('takes no authentication when none is set', async () => {
    expect(await natsConnectionOptions({}, {}, dir)).toEqual({})
  })

  it('passes a token or a user and password from the environment', async () => {
    expect(await natsConnectionOptions({ NVISY_NATS_TOKEN: SECRET }, {}, dir)).toEqual({
      token: SECRET,
    })
    expect(
      await natsConnectionOptions(
        { NVISY_NATS_USER: 'runtime', NVISY_NATS_PASSWORD: SECRET },
        {},
        dir,
      ),
    ).toEqual({ user: 'runtime', pass: SECRET })
  })

  it('refuses two authentication methods at once, naming them and no value', async () => {
    const error = await rejection(
      natsConnectionOptions(
        { NVISY_NATS_TOKEN: SECRET, NVISY_NATS_USER: 'u', NVISY_NATS_PASSWORD: SECRET },
        {},
        dir,
      ),
    )
    expect(error.kind).toBe('config')
    expect(error.message).toContain('NVISY_NATS_TOKEN')
    expect(error.message).toContain('NVISY_NATS_USER/NVISY_NATS_PASSWORD')
    expect(error.message).not.toContain(SECRET)
  })

  it('refuses a user without a password and a password without a user', async () => {
    const noPassword = await rejection(natsConnectionOptions({ NVISY_NATS_USER: 'u' }, {}, dir))
    expect(noPassword.message).toContain('NVISY_NATS_PASSWORD is missing')
    const noUser = await rejection(natsConnectionOptions({ NVISY_NATS_PASSWORD: SECRET }, {}, dir))
    expect(noUser.message).toContain('NVISY_NATS_USER is missing')
    expect(noUser.message).not.toContain(SECRET)
  })

  it('reads a creds file into an authenticator, and names a missing or malformed one without its content', async () => {
    const options = await natsConnectionOptions({}, { 'nats-creds': 'user.creds' }, dir)
    expect(typeof options.authenticator).toBe('function')
    const missing = await rejection(
      natsConnectionOptions({ NVISY_NATS_CREDS_FILE: 'absent.creds' }, {}, dir),
    )
    expect(missing.kind).toBe('config')
    expect(missing.message).toContain('absent.creds')
    expect(missing.message).toContain('ENOENT')
    const malformed = await rejection(
      natsConnectionOptions({}, { 'nats-creds': join(dir, 'not.creds') }, dir),
    )
    expect(malformed.message).toContain('holds no user JWT and nkey seed')
    expect(malformed.message).not.toContain(SECRET)
  })

  it('loads TLS files, and wants a client certificate and its key together', async () => {
    const options = await natsConnectionOptions({ NVISY_NATS_TLS_CA_FILE: 'ca.pem' }, {}, dir)
    expect(options.tls?.ca).toContain('BEGIN CERTIFICATE')
    const half = await rejection(natsConnectionOptions({}, { 'nats-tls-cert': 'ca.pem' }, dir))
    expect(half.message).toContain('--nats-tls-key')
  })
})

describe('dispatcherNaming', () => {
  it('keeps the protocol defaults when nothing is set', () => {
    expect(dispatcherNaming({}, {})).toEqual({})
  })

  it('takes flags over the environment', () => {
    expect(
      dispatcherNaming(
        {
          NVISY_NATS_SUBJECT_PREFIX: 'staging.nvisy.v1',
          NVISY_NATS_EVENTS_STREAM: 'STAGING_EVENTS',
          NVISY_NATS_QUEUE_GROUP: 'staging-runtime',
        },
        { 'subject-prefix': 'prod.nvisy.v1', 'checkpoint-bucket': 'prod-checkpoints' },
      ),
    ).toEqual({
      prefix: 'prod.nvisy.v1',
      eventsStream: 'STAGING_EVENTS',
      checkpointBucket: 'prod-checkpoints',
      queueGroup: 'staging-runtime',
    })
  })

  it('names the nonce bucket (flag over NVISY_NATS_NONCE_BUCKET)', () => {
    expect(dispatcherNaming({ NVISY_NATS_NONCE_BUCKET: 'staging-nonces' }, {})).toEqual({
      nonceBucket: 'staging-nonces',
    })
    expect(
      dispatcherNaming({ NVISY_NATS_NONCE_BUCKET: 'staging-nonces' }, { 'nonce-bucket': 'prod-n' }),
    ).toEqual({ nonceBucket: 'prod-n' })
  })

  it.each([
    ['nonce-bucket', 'a.b'],
    ['subject-prefix', 'nvisy.*.v1'],
    ['subject-prefix', 'nvisy..v1'],
    ['subject-prefix', 'has space'],
    ['events-stream', 'EVENTS.V1'],
    ['checkpoint-bucket', 'a/b'],
    ['queue-group', 'q>'],
  ] as const)('refuses --%s %j, naming the flag and the rule', (flag, value) => {
    let error: unknown
    try {
      dispatcherNaming({}, { [flag]: value })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ProviderError)
    expect((error as ProviderError).kind).toBe('config')
    expect((error as Error).message).toContain(`--${flag}`)
    expect((error as Error).message).toContain(JSON.stringify(value))
  })
})

describe('secondsFlag', () => {
  it('turns seconds into milliseconds and refuses what is not a duration', () => {
    expect(secondsFlag('drain-grace', undefined)).toBeUndefined()
    expect(secondsFlag('drain-grace', '2.5')).toBe(2500)
    expect(secondsFlag('drain-timeout', '0')).toBe(0)
    for (const bad of ['', '-1', 'soon', 'Infinity'])
      expect(() => secondsFlag('drain-timeout', bad)).toThrow(/--drain-timeout must be a number/)
  })
})

describe('natsAuthenticated', () => {
  it('is true for a token, a user, a creds authenticator or credentials in a URL', async () => {
    const { natsAuthenticated } = await import('./serve-options.js')
    expect(natsAuthenticated({}, ['nats://127.0.0.1:4222'])).toBe(false)
    expect(natsAuthenticated({}, ['127.0.0.1:4222', 'nats://h:1'])).toBe(false)
    expect(natsAuthenticated({ token: 't' }, ['nats://h:1'])).toBe(true)
    expect(natsAuthenticated({ user: 'u', pass: 'p' }, ['nats://h:1'])).toBe(true)
    expect(natsAuthenticated({ authenticator: () => ({ user: 'u' }) }, ['nats://h:1'])).toBe(true)
    expect(natsAuthenticated({}, ['nats://u:p@h:1'])).toBe(true)
    expect(natsAuthenticated({}, ['nats://tok@h:1'])).toBe(true)
  })
})

describe('credentialMaxValidityMs', () => {
  it('keeps the protocol default when unset; takes seconds from the flag over the environment', () => {
    expect(credentialMaxValidityMs({}, {})).toBeUndefined()
    expect(credentialMaxValidityMs({ NVISY_CREDENTIAL_MAX_VALIDITY: '300' }, {})).toBe(300_000)
    expect(
      credentialMaxValidityMs(
        { NVISY_CREDENTIAL_MAX_VALIDITY: '300' },
        { 'credential-max-validity': '60' },
      ),
    ).toBe(60_000)
  })

  it.each([
    '0',
    '-5',
    'soon',
    '86401',
    ' ',
  ])('refuses %j, naming the flag and the rule', (value) => {
    expect(() => credentialMaxValidityMs({}, { 'credential-max-validity': value })).toThrow(
      /--credential-max-validity \(NVISY_CREDENTIAL_MAX_VALIDITY\) must be a number of seconds from 1 to 86400/,
    )
  })
})
