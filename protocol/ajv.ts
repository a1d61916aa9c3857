import { Ajv, type ErrorObject, type Options } from 'ajv'
import formatsModule from 'ajv-formats'
import type { ValidationIssue } from './errors.js'

// ajv-formats is CommonJS with `exports.default`: under NodeNext the default
// import is `module.exports`, whose `default` is the plugin.
const addFormats = formatsModule.default

/**
 * The one way fleetq makes an ajv instance, for task schemas and the broker's
 * config schema alike: strict (a typo in a schema keyword fails at start-up
 * instead of silently checking nothing), every error reported, formats on.
 */
export function createAjv (options: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, ...options })
  addFormats(ajv)
  return ajv
}

/** ajv errors as issues: the missing or extra property goes into the path. */
export function toIssues (errors: ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((error) => {
    let path = error.instancePath
    if (error.keyword === 'required') path += `/${escapePointer(String(error.params['missingProperty']))}`
    if (error.keyword === 'additionalProperties') path += `/${escapePointer(String(error.params['additionalProperty']))}`
    return { path, message: error.message ?? error.keyword, keyword: error.keyword }
  })
}

/** RFC 6901: `~` and `/` inside a property name. */
function escapePointer (name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1')
}
