export {
  buildConnectionOptions,
  NatsConnection,
  NatsProviderConnection,
} from './nats-connection.js'
export { classifyNatsError } from './nats-errors.js'
export {
  createNatsProvider,
  type NatsProvider,
  type NatsProviderOptions,
  natsProvider,
} from './nats-provider.js'
export {
  DEFAULT_MAX_IN_FLIGHT,
  type NatsContext,
  NatsContextSchema,
  type NatsCredentials,
  NatsCredentialsSchema,
  type NatsParams,
  NatsParamsSchema,
  type NatsSinkSettings,
  type NatsSinkStream,
  NatsSinkStreamSchema,
  type NatsStream,
  NatsStreamSchema,
  type NatsStreamSettings,
  type NatsTls,
} from './nats-schemas.js'
export { VERSION } from './version.js'
