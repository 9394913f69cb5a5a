// The testkit's in-memory document provider, id `vaulted`, loaded by path from a config file
// in the stored-connection tests. Its password is checked when connecting (a run never calls
// check()), against `expected.password`, which a test sets to a fresh value: a run or check
// succeeds only when the credentials really were decrypted from the store.
// Its `store` param is marked Destination() (where the credentials go); `delayMs` is not.
import { Destination, defineProvider, ProviderError, Type } from '@nvisy/provider-core'
import { createMemoryProvider } from '@nvisy/provider-testkit'

export const expected = { password: 'secret' }

const base = createMemoryProvider({ id: 'vaulted' })
const baseParams = base.definition.params as unknown as {
  properties: Record<string, Parameters<typeof Destination>[0]>
}

export default defineProvider({
  ...base.definition,
  params: Type.Object(
    { ...baseParams.properties, store: Destination(baseParams.properties.store!) },
    { additionalProperties: false },
  ),
  async connect(input, context) {
    if (input.credentials.password !== expected.password) {
      throw new ProviderError({ kind: 'auth', message: 'password authentication failed' })
    }
    return base.definition.connect(
      {
        ...input,
        params: { ...(input.params as object), expectedPassword: expected.password },
      } as Parameters<typeof base.definition.connect>[0],
      context,
    )
  },
})
