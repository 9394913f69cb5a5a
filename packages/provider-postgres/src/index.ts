export { PostgresConnection, poolConfig, SESSION_SETTINGS } from './postgres-connection.js'
export { classifyPostgresError, kindOfSqlState } from './postgres-errors.js'
export {
  createPostgresProvider,
  type PostgresProvider,
  type PostgresProviderOptions,
  type PostgresProviderSettings,
  postgresProvider as default,
  postgresProvider,
} from './postgres-provider.js'
export {
  FILTER_OPERATORS,
  type FilterOperator,
  type PostgresContext,
  PostgresContextSchema,
  type PostgresCredentials,
  PostgresCredentialsSchema,
  type PostgresFilter,
  type PostgresParams,
  PostgresParamsSchema,
  type PostgresSinkStream,
  PostgresSinkStreamSchema,
  type PostgresStream,
  PostgresStreamSchema,
} from './postgres-schemas.js'
export { VERSION } from './version.js'
