export { openDatabase, SqliteConnection } from './sqlite-connection.js'
export { classifySqliteError, kindOfSqliteError } from './sqlite-errors.js'
export {
  createSqliteProvider,
  type SqliteProvider,
  type SqliteProviderOptions,
  type SqliteProviderSettings,
  sqliteProvider as default,
  sqliteProvider,
} from './sqlite-provider.js'
export {
  type CursorValue,
  CursorValueSchema,
  type SqliteContext,
  SqliteContextSchema,
  type SqliteCredentials,
  SqliteCredentialsSchema,
  type SqliteParams,
  SqliteParamsSchema,
  type SqliteSinkStream,
  SqliteSinkStreamSchema,
  type SqliteStream,
  SqliteStreamSchema,
} from './sqlite-schemas.js'
export { VERSION } from './version.js'
