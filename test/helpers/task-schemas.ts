import { TaskSchemas } from '../../protocol/schema-registry.js'

let shared: Promise<TaskSchemas> | undefined

/**
 * The shipped task schemas, compiled once per test file: compiling them takes
 * a good part of a second on a small machine, and clients can share one registry.
 */
export function testSchemas (): Promise<TaskSchemas> {
  shared ??= TaskSchemas.load()
  return shared
}
