export { classifyNatsError } from './nats-errors.js'
export {
  buildConnectionOptions,
  createNatsProvider,
  NatsProviderConnection,
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
  NatsSinkStreamSchema,
  NatsStreamSchema,
  type NatsStreamSettings,
  type NatsTls,
} from './nats-schemas.js'
export { VERSION } from './version.js'
