import { COLUMNS_WIRE, defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type pg from 'pg'
import { PostgresConnection } from './postgres-connection.js'
import { classifyPostgresError } from './postgres-errors.js'
import {
  PostgresContextSchema,
  PostgresCredentialsSchema,
  PostgresParamsSchema,
  PostgresSinkStreamSchema,
  PostgresStreamSchema,
} from './postgres-schemas.js'
import { COPY_TEXT } from './postgres-wire.js'
import { VERSION } from './version.js'

export interface PostgresProviderOptions {
  /**
   * An existing pool to use instead of one built from credentials and params. The
   * provider never ends it; each checkout gets the session settings (`SESSION_SETTINGS`).
   */
  pool?: pg.Pool
}

/** @deprecated use PostgresProviderOptions */
export type PostgresProviderSettings = PostgresProviderOptions

/** The PostgreSQL provider; pass `pool` to use a pool you own. */
export function createPostgresProvider(options: PostgresProviderOptions = {}) {
  return defineProvider({
    id: 'postgres',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'PostgreSQL',
    description:
      'Tables and views of a PostgreSQL database: keyset-paginated streaming reads, upsert and COPY writes',
    credentials: PostgresCredentialsSchema,
    params: PostgresParamsSchema,
    source: {
      data: 'record',
      stream: PostgresStreamSchema,
      context: PostgresContextSchema,
      incremental: true,
      describe: true,
      partition: true,
      wire: [COPY_TEXT, COLUMNS_WIRE],
      ordering: 'cursor columns (default: the primary key), primary key appended as tiebreaker',
    },
    sink: {
      data: 'record',
      stream: PostgresSinkStreamSchema,
      idempotentBy:
        'conflict keys (default: the primary key) in upsert mode; append mode is exactly-once with offsets, not idempotent without',
      prepare: true,
      offsets: true,
      wire: [COPY_TEXT, COLUMNS_WIRE],
    },
    discover: true,
    classifyError: classifyPostgresError,
    async connect(input, { logger }) {
      return PostgresConnection.open(input, { logger }, options.pool)
    },
  })
}

export const postgresProvider = createPostgresProvider()

export type PostgresProvider = typeof postgresProvider
