/** A message waiting in, or in flight from, a shared-subscription group. */
export interface GroupMessage {
  /** Store-wide order; FIFO within a group follows it. */
  seq: number
  topic: string
  payload: Buffer
  qos: 0 | 1
  /** Epoch ms it entered the queue (for the TTL). */
  enqueuedAt: number
  /** Times it was sent to a member. Stored when it is taken back (see below). */
  deliveries: number
  /**
   * In memory only, never stored: the payload is a task envelope the gate
   * checked (delivery-count.ts), so each send splices its count in without
   * parsing. A message loaded from the store is parsed as any other.
   */
  checkedEnvelope?: boolean
}

export interface GroupDefinition {
  key: string
  group: string
  filter: string
  createdAt: number
  /** Paused by an operator (docs/shared-subscriptions.md): kept across restarts. Absent means not paused. */
  paused?: boolean
}

export interface StoredGroup {
  definition: GroupDefinition
  messages: GroupMessage[]
}

/**
 * Where shared-subscription queues live. Dispatch depends only on this
 * interface: LevelDB and memory-level (level-group-store.ts) are the first
 * backends; a Redis one, for several brokers sharing queues, can follow and
 * must pass the same conformance suite (test/conformance/group-store.suite.ts).
 *
 * Each write resolves only once it is durable: a client's QoS 1 publish is
 * acknowledged only after `append` resolved for every group it matched
 * (broker/mqtt/hooks/authorize-publish.ts, docs/durability.md "Stored by its
 * group"), and another publish's journal entry is removed only then.
 */
export interface GroupStore {
  /**
   * Every group with its messages in `seq` order; sets the next `seq` above
   * every stored one. Messages whose group is gone are dropped (and deleted).
   */
  load (): Promise<StoredGroup[]>
  /** The next store-wide sequence number: larger than any used before, also across restarts. */
  nextSeq (): number
  /** Stores a group's definition, replacing the one stored under its key (how a pause is kept). */
  saveGroup (definition: GroupDefinition): Promise<void>
  /** Removes the group and all its messages. */
  deleteGroup (key: string): Promise<void>
  append (key: string, message: GroupMessage): Promise<void>
  /** Rewrites a message (its delivery count changed). */
  update (key: string, message: GroupMessage): Promise<void>
  /**
   * Records that `message` and every message of the group with a lower
   * `seq` have been sent at least once: what FIFO dispatch from the head of the queue
   * knows after each first send. `load` then gives those still stored with
   * `deliveries: 0` a count of 1, so after a crash they come back as
   * redeliveries (DUP) and not as new. Cheaper than an `update` per message:
   * a backend may keep only the highest and write it once per batch. Not
   * awaited by dispatch, like `update`.
   */
  sentThrough (key: string, message: GroupMessage): Promise<void>
  remove (key: string, seqs: number[]): Promise<void>
  /** Resolves once every write issued so far is durable (dispatch does not wait for `update` and `remove`). */
  flush (): Promise<void>
}
