// Minimal typings for the parts of qlobber fleetq uses (qlobber ships none).
declare module 'qlobber' {
  export interface QlobberOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
  }
  export class Qlobber<V = unknown> {
    constructor (options?: QlobberOptions)
    add (topic: string, value: V): this
    remove (topic: string, value?: V): this
    match (topic: string): V[]
    test (topic: string, value: V): boolean
    clear (): this
  }
  export class QlobberTrue {
    constructor (options?: QlobberOptions)
    add (topic: string): this
    remove (topic: string): this
    test (topic: string): boolean
  }
}

declare module 'qlobber/aedes/qlobber-sub.js' {
  import type { QlobberOptions } from 'qlobber'
  export default class QlobberSub {
    constructor (options?: QlobberOptions)
    subscriptionsCount: number
    add (topic: string, value: { clientId: string, topic: string, qos: number, rh?: number, rap?: boolean, nl?: boolean }): this
    remove (topic: string, value: { clientId: string, topic: string }): this
    match (topic: string): unknown[]
  }
}
