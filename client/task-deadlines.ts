/** A running task with a deadline: {@link TaskDeadlines} calls `expire()` once it has passed. */
export interface Expiring {
  /** Epoch milliseconds. */
  readonly deadline: number
  expire (): void
}

const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * The timeouts of one worker's running tasks on one timer, armed for the
 * earliest deadline, instead of a timer set and cleared per task: with a
 * short handler that pair is a measurable part of a worker's CPU per task
 * (docs/client.md, "Writing the result"). A task that finishes is only
 * removed from the set; the timer, when it fires, expires the tasks whose
 * deadline has passed and is armed again for the next one.
 *
 * The timer is unref'd: the worker's connection is what keeps the process
 * alive, as with no task running.
 */
export class TaskDeadlines {
  readonly #running = new Set<Expiring>()
  #timer: NodeJS.Timeout | null = null
  /** When the armed timer fires (epoch ms); Infinity when none is armed. */
  #armedFor = Infinity

  add (task: Expiring): void {
    this.#running.add(task)
    if (task.deadline < this.#armedFor) this.#arm(task.deadline)
  }

  delete (task: Expiring): void {
    this.#running.delete(task)
  }

  #arm (at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#armedFor = at
    // Node fires a delay above 2^31 - 1 ms after 1 ms instead: wait that long, then look again.
    this.#timer = setTimeout(this.#fire, Math.min(MAX_DELAY_MS, Math.max(0, at - Date.now())))
    this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = null
    this.#armedFor = Infinity
    const now = Date.now()
    let next = Infinity
    const expired: Expiring[] = []
    for (const task of this.#running) {
      if (task.deadline <= now) expired.push(task)
      else if (task.deadline < next) next = task.deadline
    }
    for (const task of expired) {
      this.#running.delete(task)
      task.expire()
    }
    // A task added by an expire() call armed the timer already if it is earlier.
    if (next < this.#armedFor) this.#arm(next)
  }
}
