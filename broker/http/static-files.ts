import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ErrorCodes } from '../../protocol/errors.js'
import { HttpProblem } from './problem.js'

/*
 * The dashboard's files (docs/operations.md): dashboard/ of the package, as
 * written (no build step), plus a fixed list of browser modules from
 * node_modules. Nothing else on the disk can be reached: asset names are
 * single plain file names, vendor names come from the list below.
 */

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json'
}

/** `/vendor/{name}` → a package and a file inside it. */
const VENDOR: Record<string, { pkg: string, file: string }> = {
  'preact.mjs': { pkg: 'preact', file: 'dist/preact.mjs' },
  'hooks.mjs': { pkg: 'preact', file: 'hooks/dist/hooks.mjs' },
  'htm.mjs': { pkg: 'htm', file: 'dist/htm.mjs' },
  'uPlot.esm.js': { pkg: 'uplot', file: 'dist/uPlot.esm.js' },
  'uPlot.min.css': { pkg: 'uplot', file: 'dist/uPlot.min.css' }
}

/** Node's CommonJS resolution from this file: finds packages as `import` would; package.json files it reads are cached. */
const nodeRequire = createRequire(import.meta.url)

/** A plain file name: no separators, no leading dot (so neither `.` nor `..`). */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/** A file to send. */
export interface StaticFile {
  body: Buffer
  contentType: string
  cacheControl: string
}

/**
 * The package's dashboard/ folder: two levels up from broker/http/ (run by
 * tsx), three from dist/broker/http/ (as schemas/ is found, see
 * protocol/schema-registry.ts). Null when the package has none.
 */
export function packageDashboardDir (): string | null {
  for (const relative of ['../../dashboard/', '../../../dashboard/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(join(dir, 'index.html'))) return dir
  }
  return null
}

export class DashboardFiles {
  readonly #dir: string | null
  /** CSP sources for index.html's inline scripts (its import map), as of its last read. */
  #scriptHashes: string[] = []
  #indexMtime = -1

  constructor (dir: string | null) {
    this.#dir = dir
  }

  /** Reads index.html once, so the first answer's Content-Security-Policy already allows its import map. */
  async prepare (): Promise<void> {
    await this.index().catch(() => undefined)
  }

  /**
   * The Content-Security-Policy of every answer: only this origin's files,
   * and of inline scripts only the import map (which must be inline, HTML
   * §4.12.1), allowed by its hash.
   */
  contentSecurityPolicy (): string {
    const scripts = ["'self'", ...this.#scriptHashes.map((hash) => `'${hash}'`)].join(' ')
    return `default-src 'self'; script-src ${scripts}; style-src 'self'; img-src 'self' data:; connect-src 'self'; ` +
      "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
  }

  /** GET / and /index.html. */
  async index (): Promise<StaticFile> {
    const path = this.#inDashboard('index.html')
    const info = await stat(path).catch(() => null)
    if (info === null || !info.isFile()) throw notFound('the dashboard is not installed')
    const body = await readFile(path)
    if (info.mtimeMs !== this.#indexMtime) {
      this.#scriptHashes = inlineScriptHashes(body.toString('utf8'))
      this.#indexMtime = info.mtimeMs
    }
    return { body, contentType: CONTENT_TYPES['.html']!, cacheControl: 'no-cache' }
  }

  /** GET /assets/{name}: a file directly in dashboard/. */
  async asset (name: string): Promise<StaticFile> {
    if (!ASSET_NAME.test(name)) throw notFound(`no such asset: ${name}`)
    return await this.#send(this.#inDashboard(name), name)
  }

  /** GET /vendor/{name}: one of the allowed browser modules from node_modules. */
  async vendor (name: string): Promise<StaticFile> {
    const entry = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined
    if (entry === undefined) throw notFound(`no such vendor file: ${name}`)
    const root = this.#packageRoot(entry.pkg)
    if (root === null) throw notFound(`${entry.pkg} is not installed`)
    return await this.#send(join(root, entry.file), name)
  }

  #inDashboard (name: string): string {
    if (this.#dir === null) throw notFound('the dashboard is not installed')
    return join(this.#dir, name)
  }

  async #send (path: string, name: string): Promise<StaticFile> {
    const contentType = CONTENT_TYPES[extname(name).toLowerCase()]
    if (contentType === undefined) throw notFound(`no such file: ${name}`)
    const info = await stat(path).catch(() => null)
    if (info === null || !info.isFile()) throw notFound(`no such file: ${name}`)
    const cacheControl = contentType.startsWith('text/html') ? 'no-cache' : 'public, max-age=300'
    return { body: await readFile(path), contentType, cacheControl }
  }

  /**
   * A package's folder, wherever Node's resolution finds it (hoisted or not):
   * its main entry, then up to the package.json naming it. Not
   * `require.resolve('x/package.json')`: some packages do not export it.
   */
  #packageRoot (pkg: string): string | null {
    let dir: string
    try {
      dir = dirname(nodeRequire.resolve(pkg))
    } catch {
      return null
    }
    for (;;) {
      if (existsSync(join(dir, 'package.json')) && readName(join(dir, 'package.json')) === pkg) return dir
      const parent = dirname(dir)
      if (parent === dir) return null
      dir = parent
    }
  }
}

function readName (packageJson: string): string | undefined {
  try {
    return (nodeRequire(packageJson) as { name?: string }).name
  } catch {
    return undefined
  }
}

/** `sha256-...` of each inline `<script>` of an HTML page (CSP Level 3 hash sources). */
export function inlineScriptHashes (html: string): string[] {
  const hashes: string[] = []
  for (const [, attributes, text] of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (/\bsrc\s*=/i.test(attributes ?? '')) continue
    hashes.push(`sha256-${createHash('sha256').update(text ?? '', 'utf8').digest('base64')}`)
  }
  return hashes
}

function notFound (message: string): HttpProblem {
  return new HttpProblem(404, ErrorCodes.NOT_FOUND, message)
}
