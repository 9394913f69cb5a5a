// The two error bodies Pinecone answers with. The control plane (api.pinecone.io) sends
// `{"error":{"code":"NOT_FOUND","message":"..."},"status":404}`; the data plane (the index
// host, a gRPC gateway) sends `{"code":3,"message":"...","details":[]}` with the gRPC code.

export type ControlErrorCode =
  | 'UNAUTHENTICATED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'INTERNAL'

/** gRPC status codes used by the data plane. */
export const GRPC = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const

export class PineconeApiError extends Error {
  readonly status: number
  readonly body: unknown
  readonly headers: Record<string, string>

  constructor(
    status: number,
    body: unknown,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'PineconeApiError'
    this.status = status
    this.body = body
    this.headers = headers
  }

  static control(status: number, code: ControlErrorCode, message: string): PineconeApiError {
    return new PineconeApiError(status, { error: { code, message }, status }, message)
  }

  static data(status: number, code: number, message: string): PineconeApiError {
    return new PineconeApiError(status, { code, message, details: [] }, message)
  }
}
