/** A command failure the server answers with `{ ok: 0, errmsg, code, codeName }`. */
export class CommandError extends Error {
  readonly code: number
  readonly codeName: string
  readonly extra: Record<string, unknown>

  constructor(
    code: number,
    codeName: string,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = 'CommandError'
    this.code = code
    this.codeName = codeName
    this.extra = extra
  }

  toReply(): Record<string, unknown> {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra }
  }
}

/** One document's failure inside a write command: `writeErrors[i]`. */
export class WriteError extends Error {
  readonly code: number
  readonly details: Record<string, unknown>

  constructor(code: number, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'WriteError'
    this.code = code
    this.details = details
  }
}

export const badValue = (message: string) => new CommandError(2, 'BadValue', message)
export const failedToParse = (message: string) => new CommandError(9, 'FailedToParse', message)
export const typeMismatch = (message: string) => new CommandError(14, 'TypeMismatch', message)
