export { KvCheckpointStore } from './checkpoint-store.js'
export {
  type BindingInput,
  type CredentialPolicy,
  type CredentialScope,
  connectionInput,
  credentialBinding,
  credentialIssues,
  type ExpectedBinding,
  expectedBinding,
  isCurvePublicKey,
  type OpenedCredentials,
  type OpenPolicy,
  openSealedCredentials,
  runtimeKeyPair,
  type SealOptions,
  sealCredentials,
  sealedPlaintext,
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
export { KvNonceStore, type NonceStore } from './nonce-store.js'
export { RunEventPublisher } from './run-events.js'
export {
  dispatcherNaming,
  natsConnectionOptions,
  SERVE_ENV,
  type ServeFlags,
  secondsFlag,
} from './serve-options.js'
