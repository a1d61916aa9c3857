/**
 * The order a broker stops in. Each part registers its closer, in a phase,
 * as soon as it exists; `close()` and a start that fails halfway both run
 * this one list, so whatever was opened is closed (the LevelDB lock
 * included). Within a phase, the part started last closes first.
 */
export const CLOSE_PHASES = [
  /** No new work: the listener stops accepting; publishes waiting for a start that will not come fail. */
  'intake',
  /** Timers that publish: schedules, delayed messages. */
  'timers',
  /** Publishes already acknowledged finish routing, so a clean restart does not replay them. */
  'drain',
  /** Aedes disconnects its clients and closes its emitter. */
  'mqtt',
  /** The listener's sockets are gone. */
  'connections',
  /** Services write out what they hold (groups, idempotency keys). */
  'services',
  /** The store: LevelDB closes and releases its lock. */
  'store'
] as const

export type ClosePhase = typeof CLOSE_PHASES[number]

interface Step {
  phase: ClosePhase
  name: string
  close: () => void | Promise<void>
}

export class Closers {
  readonly #steps: Step[] = []
  #closing: Promise<unknown[]> | null = null

  add (phase: ClosePhase, name: string, close: () => void | Promise<void>): void {
    this.#steps.push({ phase, name, close })
  }

  /**
   * Runs every step even if some fail, so a failed step leaves nothing else open; resolves with the
   * failures, each wrapped with the step's name. Idempotent.
   */
  close (): Promise<unknown[]> {
    this.#closing ??= this.#run()
    return this.#closing
  }

  async #run (): Promise<unknown[]> {
    const failures: unknown[] = []
    const ordered = [...this.#steps].reverse().sort((a, b) => CLOSE_PHASES.indexOf(a.phase) - CLOSE_PHASES.indexOf(b.phase))
    for (const step of ordered) {
      try {
        await step.close()
      } catch (err) {
        failures.push(new Error(`closing ${step.name} failed: ${(err as Error).message}`, { cause: err }))
      }
    }
    return failures
  }
}
