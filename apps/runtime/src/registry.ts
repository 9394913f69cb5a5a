import { type Provider, ProviderError } from '@nvisy/provider-core'
import type { ProviderRegistry } from './executor/types.js'

/** Providers by id. Adding a second provider with an id already present is an error. */
export class MapProviderRegistry implements ProviderRegistry {
  readonly #providers = new Map<string, { provider: Provider; from: string | undefined }>()

  constructor(providers: readonly Provider[] = []) {
    for (const provider of providers) this.add(provider)
  }

  add(provider: Provider, from?: string): void {
    const existing = this.#providers.get(provider.id)
    if (existing) {
      const where = (f: string | undefined) => (f ? `package ${f}` : 'code')
      throw new ProviderError({
        kind: 'config',
        providerId: provider.id,
        message: `two providers have the id ${JSON.stringify(provider.id)}: from ${where(existing.from)} and from ${where(from)}`,
      })
    }
    this.#providers.set(provider.id, { provider, from })
  }

  get(id: string): Provider | undefined {
    return this.#providers.get(id)?.provider
  }

  list(): Provider[] {
    return [...this.#providers.values()].map((entry) => entry.provider)
  }

  /** The package a provider was loaded from, when it came from the loader. */
  packageOf(id: string): string | undefined {
    return this.#providers.get(id)?.from
  }
}
