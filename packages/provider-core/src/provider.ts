// The contract moved to contract.ts, defineProvider to define-provider.ts and the connection
// guard to connection-guard.ts. This module only re-exports them for modules inside core that
// still import './provider.js' (object-store.ts); once none does, it goes. Not part of the
// package's public entry (index.ts exports from the new modules).
export * from './contract.js'
export { defineProvider } from './define-provider.js'
