// The testkit's in-memory document provider, id `vaulted`, loaded by path from a config file
// in the stored-connection tests. Its password is checked when connecting (a run never calls
// check()), against `expected.password`, which a test sets to a fresh value: a run or check
// succeeds only when the credentials really were decrypted from the store.
import { defineProvider, ProviderError } from '@nvisy/provider-core'
import { createMemoryProvider } from '@nvisy/provider-testkit'

export const expected = { password: 'secret' }

const base = createMemoryProvider({ id: 'vaulted' })

export default defineProvider({
  ...base.definition,
  async connect(input, context) {
    if (input.credentials.password !== expected.password) {
      throw new ProviderError({ kind: 'auth', message: 'password authentication failed' })
    }
    return base.definition.connect(
      { ...input, params: { ...input.params, expectedPassword: expected.password } },
      context,
    )
  },
})
