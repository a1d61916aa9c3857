/** A promise with its resolve function, to hold a handler until the test lets it go. */
export interface Deferred<T = void> {
  promise: Promise<T>
  resolve (value: T): void
  reject (err: Error): void
}

export function deferred<T = void> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
