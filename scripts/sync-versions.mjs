// After `changeset version`: copy each package's version into its src/version.ts,
// so the VERSION a package exports is the version it is published as.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

for (const group of ['packages', 'apps', 'examples']) {
  if (!existsSync(group)) continue
  for (const entry of readdirSync(group)) {
    const manifest = join(group, entry, 'package.json')
    const versionFile = join(group, entry, 'src', 'version.ts')
    if (!existsSync(manifest) || !existsSync(versionFile)) continue
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'))
    const next = `export const VERSION = '${version}'\n`
    if (readFileSync(versionFile, 'utf8') !== next) {
      writeFileSync(versionFile, next)
      console.log(`${join(group, entry)}: VERSION = ${version}`)
    }
  }
}
