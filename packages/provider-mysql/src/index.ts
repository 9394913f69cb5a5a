export { EXACT_VALUE_OPTIONS, SESSION_SQL_MODE } from './mysql-client.js'
export { MysqlConnection, poolOptions } from './mysql-connection.js'
export { classifyMysqlError, mysqlErrorKind } from './mysql-errors.js'
export {
  createMysqlProvider,
  type MysqlProvider,
  type MysqlProviderOptions,
  mysqlProvider,
} from './mysql-provider.js'
export {
  type MysqlContext,
  MysqlContextSchema,
  type MysqlCredentials,
  MysqlCredentialsSchema,
  type MysqlFilter,
  type MysqlParams,
  MysqlParamsSchema,
  type MysqlSinkStream,
  MysqlSinkStreamSchema,
  type MysqlStream,
  MysqlStreamSchema,
} from './mysql-schemas.js'
export { VERSION } from './version.js'
