import { describe, expect, it } from 'vitest'
import { classifySqliteError, kindOfSqliteError } from './sqlite-errors.js'

describe('kindOfSqliteError', () => {
  it.each([
    ['SQLITE_BUSY', '', 'transient'],
    ['SQLITE_BUSY_SNAPSHOT', '', 'transient'],
    ['SQLITE_LOCKED', '', 'transient'],
    ['SQLITE_LOCKED_SHAREDCACHE', '', 'transient'],
    ['SQLITE_CONSTRAINT_UNIQUE', '', 'data'],
    ['SQLITE_CONSTRAINT_NOTNULL', '', 'data'],
    ['SQLITE_CONSTRAINT_PRIMARYKEY', '', 'data'],
    ['SQLITE_MISMATCH', '', 'data'],
    ['SQLITE_CANTOPEN', '', 'config'],
    ['SQLITE_READONLY', '', 'config'],
    ['SQLITE_READONLY_DBMOVED', '', 'config'],
    ['SQLITE_NOTADB', '', 'config'],
    ['SQLITE_ERROR', 'no such table: orders', 'not_found'],
    ['SQLITE_ERROR', 'no such column: x', 'config'],
    ['SQLITE_ERROR', 'near "SELEC": syntax error', 'config'],
    ['SQLITE_IOERR_READ', '', 'internal'],
  ])('%s (%s) is %s', (code, message, kind) => {
    expect(kindOfSqliteError(code, message)).toBe(kind)
  })
})

describe('classifySqliteError', () => {
  it('classifies errors with a SQLite code and keeps the code and cause', () => {
    const raw = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
    const error = classifySqliteError(raw)!
    expect(error.kind).toBe('transient')
    expect(error.code).toBe('SQLITE_BUSY')
    expect(error.cause).toBe(raw)
    expect(error.message).toContain('database is locked')
  })

  it('leaves other errors to the core (socket codes, plain errors)', () => {
    expect(classifySqliteError(new Error('boom'))).toBeUndefined()
    expect(
      classifySqliteError(Object.assign(new Error('x'), { code: 'ECONNRESET' })),
    ).toBeUndefined()
  })
})
