import { describe, expect, it } from 'vitest'
import { classifyMysqlError, mysqlErrorKind } from './mysql-errors.js'

const err = (errno: number | undefined, code: string, sqlState?: string) =>
  Object.assign(new Error(`boom ${code}`), { errno, code, sqlState })

describe('classifyMysqlError', () => {
  it.each([
    [1045, 'ER_ACCESS_DENIED_ERROR', 'auth'],
    [1044, 'ER_DBACCESS_DENIED_ERROR', 'auth'],
    [1049, 'ER_BAD_DB_ERROR', 'not_found'],
    [1146, 'ER_NO_SUCH_TABLE', 'not_found'],
    [1054, 'ER_BAD_FIELD_ERROR', 'config'],
    [1213, 'ER_LOCK_DEADLOCK', 'transient'],
    [1205, 'ER_LOCK_WAIT_TIMEOUT', 'transient'],
    [1040, 'ER_CON_COUNT_ERROR', 'transient'],
    [2006, 'CR_SERVER_GONE_ERROR', 'transient'],
    [2013, 'CR_SERVER_LOST', 'transient'],
    [1969, 'ER_STATEMENT_TIMEOUT', 'transient'],
    [1062, 'ER_DUP_ENTRY', 'data'],
    [1048, 'ER_BAD_NULL_ERROR', 'data'],
    [1406, 'ER_DATA_TOO_LONG', 'data'],
    [1264, 'ER_WARN_DATA_OUT_OF_RANGE', 'data'],
    [1366, 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', 'data'],
    [3140, 'ER_INVALID_JSON_TEXT', 'data'],
    [4025, 'ER_CONSTRAINT_FAILED', 'data'],
    [3819, 'ER_CHECK_CONSTRAINT_VIOLATED', 'data'],
  ])('errno %i (%s) is %s', (errno, code, kind) => {
    const classified = classifyMysqlError(err(errno, code))
    expect(classified?.kind).toBe(kind)
    expect(classified?.code).toBe(code)
    expect(classified?.message).toContain(String(errno))
  })

  it.each([
    ['ECONNREFUSED', 'transient'],
    ['ECONNRESET', 'transient'],
    ['PROTOCOL_CONNECTION_LOST', 'transient'],
    ['ETIMEDOUT', 'transient'],
    ['ENOTFOUND', 'config'],
    ['HANDSHAKE_NO_SSL_SUPPORT', 'config'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'config'],
  ])('socket code %s is %s', (code, kind) => {
    expect(mysqlErrorKind(err(undefined, code))).toBe(kind)
  })

  it('falls back on the SQLSTATE class, and leaves unknown errors to the core', () => {
    expect(mysqlErrorKind(err(9999, 'X', '23000'))).toBe('data')
    expect(mysqlErrorKind(err(9999, 'X', '22007'))).toBe('data')
    expect(mysqlErrorKind(err(9999, 'X', '40001'))).toBe('transient')
    expect(mysqlErrorKind(err(9999, 'X', 'HY000'))).toBeUndefined()
    expect(classifyMysqlError(new Error('plain'))).toBeUndefined()
    expect(classifyMysqlError('text')).toBeUndefined()
  })
})
