// Error bodies in the servers' format:
// {"error":{"root_cause":[{type,reason,...}],"type","reason",...},"status":N}

export class SearchApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly reason: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
    readonly causedBy?: { type: string; reason: string },
  ) {
    super(reason)
  }

  static parsing(reason: string, type = 'parsing_exception'): SearchApiError {
    return new SearchApiError(400, type, reason, { line: 1, col: 1 })
  }

  static indexNotFound(index: string): SearchApiError {
    return new SearchApiError(404, 'index_not_found_exception', `no such index [${index}]`, {
      'resource.type': 'index_or_alias',
      'resource.id': index,
      index_uuid: '_na_',
      index,
    })
  }

  static illegal(reason: string): SearchApiError {
    return new SearchApiError(400, 'illegal_argument_exception', reason)
  }

  body(): Record<string, unknown> {
    const cause = { type: this.type, reason: this.reason, ...this.extra }
    // A root cause is shown without its own causes (an exception with `caused_by` in extra).
    const { caused_by: _, ...root } = cause as Record<string, unknown>
    const error: Record<string, unknown> = { root_cause: [root], ...cause }
    if (this.causedBy) {
      error.root_cause = [this.causedBy]
      error.caused_by = this.causedBy
    }
    return { error, status: this.status }
  }
}
