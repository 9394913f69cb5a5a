import { describe, expect, it } from 'vitest'
import { memoryLogger, redactingLogger, silentLogger } from './logger.js'
import { REDACTED, Redactor } from './redact.js'

describe('redactingLogger', () => {
  it('redacts messages, fields and child bindings', () => {
    const lines = memoryLogger()
    const logger = redactingLogger(lines, new Redactor(['hunter2-secret']))
    logger.info('plain hunter2-secret')
    logger.warn({ password: 'hunter2-secret', n: 1 }, 'with hunter2-secret')
    logger.error({ error: new Error('failed with hunter2-secret') })
    logger.child?.({ dsn: 'x://u:hunter2-secret@h' }).debug('child')
    expect(lines.lines[0]).toEqual({ level: 'info', message: `plain ${REDACTED}` })
    expect(lines.lines[1]).toEqual({
      level: 'warn',
      fields: { password: REDACTED, n: 1 },
      message: `with ${REDACTED}`,
    })
    expect(((lines.lines[2]!.fields as { error: Error }).error as Error).message).toBe(
      `failed with ${REDACTED}`,
    )
    expect(lines.lines[3]).toEqual({ level: 'debug', message: 'child' })
    expect(JSON.stringify(lines.lines)).not.toContain('hunter2')
  })

  it('passes the logger through when there is nothing to redact', () => {
    const lines = memoryLogger()
    expect(redactingLogger(lines, new Redactor([]))).toBe(lines)
    expect(() => silentLogger.info('x')).not.toThrow()
  })
})
