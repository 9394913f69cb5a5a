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

describe('server messages without the values they quote', () => {
  const canary = 'CANARY-5f3a9c1e-errors'
  /** A mysql2 error as the driver builds it: the server's text, and the statement it ran. */
  const serverError = (errno: number, code: string, sqlState: string, sqlMessage: string) =>
    Object.assign(new Error(sqlMessage), {
      errno,
      code,
      sqlState,
      sqlMessage,
      sql: `INSERT INTO t VALUES ('${canary}')`,
    })

  it.each([
    [1062, 'ER_DUP_ENTRY', '23000', `Duplicate entry '${canary}' for key 'PRIMARY'`],
    [
      1062,
      'ER_DUP_ENTRY',
      '23000',
      `Duplicate entry '${canary}' for key 'x'-1' for key 'uniq_email'`,
    ],
    [1586, 'ER_DUP_ENTRY_WITH_KEY_NAME', '23000', `Duplicate entry '${canary}' for key 'k'`],
    [
      1292,
      'ER_TRUNCATED_WRONG_VALUE',
      '22007',
      `Incorrect date value: '${canary}' for column \`db\`.\`t\`.\`d\` at row 1`,
    ],
    [
      1366,
      'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD',
      '22007',
      `Incorrect integer value: '${canary}' for column \`db\`.\`t\`.\`i\` at row 1`,
    ],
    [1292, 'ER_TRUNCATED_WRONG_VALUE', '22007', `Truncated incorrect DOUBLE value: '${canary}'`],
    [
      1411,
      'ER_WRONG_VALUE_FOR_TYPE',
      '22007',
      `Incorrect datetime value: '${canary}' for function str_to_date`,
    ],
    [
      1367,
      'ER_ILLEGAL_VALUE_FOR_TYPE',
      '22007',
      `Illegal double '${canary}' value found during parsing`,
    ],
    [1690, 'ER_DATA_OUT_OF_RANGE', '22003', `BIGINT value is out of range in '${canary} + 1'`],
    [
      1064,
      'ER_PARSE_ERROR',
      '42000',
      `You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '${canary}')' at line 1`,
    ],
  ])('errno %i (%s): the message and its cause keep the rule, not the value', (errno, code, state, text) => {
    const classified = classifyMysqlError(serverError(errno, code, state, text))!
    expect(classified.code).toBe(code)
    expect(classified.message).toContain(String(errno))
    expect(classified.message).not.toContain('CANARY')
    const cause = classified.cause as Record<string, unknown> & Error
    expect(cause).toBeInstanceOf(Error)
    expect(cause.errno).toBe(errno)
    expect(cause.code).toBe(code)
    expect(cause.sqlState).toBe(state)
    expect(
      [cause.message, String(cause.stack), JSON.stringify(cause), String(cause.sqlMessage)].join(
        ' ',
      ),
    ).not.toContain('CANARY')
  })

  it('keeps what names the row, the column and the key', () => {
    const dup = classifyMysqlError(
      serverError(
        1062,
        'ER_DUP_ENTRY',
        '23000',
        `Duplicate entry '${canary}' for key 'uniq_email'`,
      ),
    )!
    expect(dup.message).toMatch(/^Duplicate entry \S* ?for key 'uniq_email'/)
    const date = classifyMysqlError(
      serverError(
        1292,
        'ER_TRUNCATED_WRONG_VALUE',
        '22007',
        `Incorrect date value: '${canary}' for column \`db\`.\`t\`.\`d\` at row 1`,
      ),
    )!
    expect(date.message).toMatch(/^Incorrect date value .*for column `db`.`t`.`d` at row 1/)
    // Messages without a quoted value pass unchanged.
    const tooLong = classifyMysqlError(
      serverError(1406, 'ER_DATA_TOO_LONG', '22001', "Data too long for column 'name' at row 1"),
    )!
    expect(tooLong.message).toBe("Data too long for column 'name' at row 1 (ER_DATA_TOO_LONG 1406)")
  })
})
