import { COLUMNS_WIRE, defineProvider, SPECIFICATION_VERSION } from '@nvisy/provider-core'
import type { Pool } from 'mysql2/promise'
import { checkInjectedPool, MysqlConnection } from './mysql-connection.js'
import { POSTGRES_COPY_TEXT } from './mysql-copy-text.js'
import { classifyMysqlError } from './mysql-errors.js'
import {
  MysqlContextSchema,
  MysqlCredentialsSchema,
  MysqlParamsSchema,
  MysqlSinkStreamSchema,
  MysqlStreamSchema,
} from './mysql-schemas.js'
import { VERSION } from './version.js'

export interface MysqlProviderOptions {
  /**
   * An existing mysql2 pool (from `mysql2/promise`) to use instead of creating one from the
   * credentials and params. It must be created with `supportBigNumbers`, `bigNumberStrings`,
   * `dateStrings` and `jsonStrings` set to true (see EXACT_VALUE_OPTIONS); close() leaves it open.
   */
  pool?: Pool
}

/** Create the MySQL/MariaDB provider, optionally over an existing mysql2 pool. */
export function createMysqlProvider(options: MysqlProviderOptions = {}) {
  if (options.pool) checkInjectedPool(options.pool)
  return defineProvider({
    id: 'mysql',
    version: VERSION,
    specificationVersion: SPECIFICATION_VERSION,
    displayName: 'MySQL / MariaDB',
    description:
      'Tables and views of MySQL 5.7+/8 and MariaDB 10.5+: keyset-paginated exact reads, upserts by key',
    credentials: MysqlCredentialsSchema,
    params: MysqlParamsSchema,
    source: {
      data: 'record',
      stream: MysqlStreamSchema,
      context: MysqlContextSchema,
      incremental: true,
      describe: true,
      partition: true,
      // In order of preference: COPY text from the server's own text (to PostgreSQL, when
      // the destination's types hold the values exactly), else batches by column.
      wire: [POSTGRES_COPY_TEXT, COLUMNS_WIRE],
      ordering:
        'the cursor columns (default the primary key; the primary key breaks ties), ascending',
    },
    sink: {
      data: 'record',
      stream: MysqlSinkStreamSchema,
      idempotentBy: 'primary key / unique keys (INSERT ... ON DUPLICATE KEY UPDATE)',
      prepare: true,
      offsets: true,
      wire: [COLUMNS_WIRE],
    },
    discover: true,
    classifyError: classifyMysqlError,
    async connect(input): Promise<MysqlConnection> {
      return MysqlConnection.open(input, options.pool)
    },
  })
}

/** The MySQL/MariaDB provider, creating its own mysql2 pool per connection. */
export const mysqlProvider = createMysqlProvider()

export type MysqlProvider = typeof mysqlProvider
