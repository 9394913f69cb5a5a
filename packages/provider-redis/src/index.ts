export type { RedisClient } from './redis-client.js'
export { RedisConnection } from './redis-connection.js'
export { classifyRedisError } from './redis-errors.js'
export {
  createRedisProvider,
  type RedisProvider,
  type RedisProviderOptions,
  redisProvider,
} from './redis-provider.js'
export {
  DEFAULT_DEDUPE_TTL_SECONDS,
  type RedisContext,
  RedisContextSchema,
  type RedisCredentials,
  RedisCredentialsSchema,
  type RedisDocumentContext,
  type RedisDocumentSink,
  type RedisDocumentStream,
  type RedisMessageContext,
  type RedisMessageSink,
  type RedisMessageStream,
  type RedisParams,
  RedisParamsSchema,
  type RedisSinkStream,
  RedisSinkStreamSchema,
  type RedisStream,
  RedisStreamSchema,
} from './redis-schemas.js'
export { VERSION } from './version.js'
