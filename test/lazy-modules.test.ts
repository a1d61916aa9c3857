import { describe, expect, it } from 'vitest'
import { spawnNodeChild } from './helpers/child-process.js'
import { tempRoot } from './helpers/temp-root.js'

/**
 * A broker loads the modules of its optional parts only when they are on:
 * ws with a WebSocket listener, prom-client (and the HTTP server) with the
 * HTTP listener, pino-pretty with pretty logs. Loaded, they stay in its heap for good, several MB of RSS
 * (docs/benchmarks.md, "The broker's RSS").
 */
const root = tempRoot('fleetq-lazy-')
const optional = ['pino-pretty', 'prom-client', 'ws']

async function loadedPackages (options: object): Promise<string[]> {
  const child = spawnNodeChild(new URL('./helpers/loaded-packages-child.ts', import.meta.url),
    [JSON.stringify({ port: 0, host: '127.0.0.1', ...options }), await root.freshDir(), optional.join(',')])
  const line = await child.waitForLine((l) => l.startsWith('{"loaded"'), 'the loaded packages')
  const exit = await child.exited
  expect(exit.code, child.stderr()).toBe(0)
  return (JSON.parse(line) as { loaded: string[] }).loaded
}

describe('optional modules are loaded only when used', () => {
  it('a broker with only its MQTT listener, logging JSON, loads none of pino-pretty, ws and prom-client', async () => {
    expect(await loadedPackages({})).toEqual([])
  })

  it('the WebSocket and HTTP listeners load ws and prom-client; pretty logs load pino-pretty', async () => {
    expect((await loadedPackages({ ws: { port: 0 }, http: { port: 0 } })).sort()).toEqual(['prom-client', 'ws'])
    expect(await loadedPackages({ logFormat: 'pretty' })).toEqual(['pino-pretty'])
  })
})
