export { KvCheckpointStore } from './checkpoint-store.js'
export {
  type CredentialPolicy,
  credentialIssues,
  isCurvePublicKey,
  openSealedCredentials,
  resolveConnectionInput,
  runtimeKeyPair,
  sealCredentials,
} from './credentials.js'
export {
  type Dispatcher,
  type DispatcherNaming,
  type DispatcherOptions,
  startDispatcher,
} from './dispatcher.js'
export {
  PINO_REDACT_PATHS,
  redactSecretFields,
  SECRET_FIELD_NAMES,
  secretSafeLogger,
} from './logging.js'
export { RunEventPublisher } from './run-events.js'
export {
  dispatcherNaming,
  natsConnectionOptions,
  SERVE_ENV,
  type ServeFlags,
  secondsFlag,
} from './serve-options.js'
