import { ProviderError, toProviderError } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { classifyRedisError } from './redis-errors.js'

function replyError(message: string): Error {
  const error = new Error(message)
  error.name = 'ReplyError'
  return error
}

describe('classifyRedisError', () => {
  it.each([
    ['WRONGPASS invalid username-password pair or user is disabled.', 'auth', 'WRONGPASS'],
    ['NOAUTH Authentication required.', 'auth', 'NOAUTH'],
    ["NOPERM User x has no permissions to run the 'xadd' command", 'auth', 'NOPERM'],
    ['LOADING Redis is loading the dataset in memory', 'transient', 'LOADING'],
    ['BUSY Redis is busy running a script.', 'transient', 'BUSY'],
    ['TRYAGAIN Multiple keys request during rehashing of slot', 'transient', 'TRYAGAIN'],
    ['CLUSTERDOWN The cluster is down', 'transient', 'CLUSTERDOWN'],
    ["READONLY You can't write against a read only replica.", 'transient', 'READONLY'],
    ["OOM command not allowed when used memory > 'maxmemory'.", 'transient', 'OOM'],
    ['WRONGTYPE Operation against a key holding the wrong kind of value', 'config', 'WRONGTYPE'],
  ])('%s -> %s', (message, kind, code) => {
    const error = classifyRedisError(replyError(message))
    expect(error?.kind).toBe(kind)
    expect(error?.code).toBe(code)
  })

  it('reads the reply code inside a script error', () => {
    const error = classifyRedisError(
      replyError(
        'ERR Error running script (call to f_abc): @user_script:1: WRONGTYPE Operation against a key',
      ),
    )
    expect(error?.kind).toBe('config')
  })

  it('socket errors and ioredis connection messages are transient', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    })
    expect(classifyRedisError(refused)?.kind).toBe('transient')
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
    expect(classifyRedisError(reset)?.kind).toBe('transient')
    expect(classifyRedisError(new Error('Connection is closed.'))?.kind).toBe('transient')
    expect(
      classifyRedisError(
        new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      )?.kind,
    ).toBe('transient')
    expect(classifyRedisError(new Error('Command timed out'))?.kind).toBe('transient')
    expect(classifyRedisError(replyError('ERR max number of clients reached'))?.kind).toBe(
      'transient',
    )
  })

  it('an AUTH against a server without a password is auth', () => {
    const error = classifyRedisError(
      replyError(
        'ERR AUTH <password> called without any password configured for the default user.',
      ),
    )
    expect(error?.kind).toBe('auth')
  })

  it('leaves other errors to the core, which makes them internal', () => {
    const raw = replyError('ERR syntax error')
    expect(classifyRedisError(raw)).toBeUndefined()
    expect(toProviderError(raw, { classify: classifyRedisError }).kind).toBe('internal')
    expect(classifyRedisError('text')).toBeUndefined()
  })

  it('keeps a ProviderError as it is', () => {
    const error = new ProviderError({ kind: 'data', message: 'x' })
    expect(classifyRedisError(error)).toBe(error)
  })
})
