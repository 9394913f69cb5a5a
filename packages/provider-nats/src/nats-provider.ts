import type { NatsConnection as NatsClient } from '@nats-io/nats-core'
import type { NodeConnectionOptions } from '@nats-io/transport-node'
import { defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import { NatsConnection } from './nats-connection.js'
import { classifyNatsError } from './nats-errors.js'
import {
  NatsContextSchema,
  NatsCredentialsSchema,
  NatsParamsSchema,
  NatsSinkStreamSchema,
  NatsStreamSchema,
} from './nats-schemas.js'
import { VERSION } from './version.js'

export interface NatsProviderOptions {
  /**
   * An existing connection to use instead of connecting from params and credentials. It is
   * shared, not owned: `close()` leaves it open, and `servers`, `tls`, `name` and the
   * credentials are not used (they are still validated).
   */
  connection?: NatsClient
  /** Extra client options merged over the ones built from params (owned connections only). */
  connectionOptions?: Partial<NodeConnectionOptions>
  /** Messages an ordered consumer buffers ahead of a read. Default 1024. */
  readPrefetch?: number
}

/** Create the NATS JetStream provider, optionally around an existing connection. */
export function createNatsProvider(options: NatsProviderOptions = {}) {
  return defineProvider({
    id: 'nats',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'NATS JetStream',
    description:
      'Read JetStream streams through ordered consumers; publish with Nats-Msg-Id dedupe',
    credentials: NatsCredentialsSchema,
    params: NatsParamsSchema,
    source: {
      data: 'message',
      stream: NatsStreamSchema,
      context: NatsContextSchema,
      incremental: true,
      ordering: 'stream sequence',
    },
    sink: {
      data: 'message',
      stream: NatsSinkStreamSchema,
      idempotentBy: 'Nats-Msg-Id (message id) within the stream duplicate window',
    },
    discover: true,
    classifyError: classifyNatsError,
    async connect({ credentials, params }, { signal }) {
      if (options.connection)
        return new NatsConnection(options.connection, false, params, options.readPrefetch)
      return NatsConnection.open(credentials, params, signal, options)
    },
  })
}

/** The NATS JetStream provider with connections it opens and owns. */
export const natsProvider = createNatsProvider()
export type NatsProvider = typeof natsProvider
