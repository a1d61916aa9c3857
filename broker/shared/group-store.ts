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
}

export interface GroupDefinition {
  key: string
  group: string
  filter: string
  createdAt: number
}

export interface StoredGroup {
  definition: GroupDefinition
  messages: GroupMessage[]
}

/**
 * Where shared-subscription queues live. Dispatch depends only on this
 * interface: LevelDB is the first implementation (level-group-store.ts); a
 * Redis one, for several brokers sharing queues, can follow (issue 3).
 *
 * Each write resolves only once it is durable: a QoS 1 publish is
 * acknowledged only after `append` resolved for every group it matched.
 */
export interface GroupStore {
  /** Every group with its messages in `seq` order; sets the next `seq`. */
  load (): Promise<StoredGroup[]>
  nextSeq (): number
  saveGroup (definition: GroupDefinition): Promise<void>
  /** Removes the group and all its messages. */
  deleteGroup (key: string): Promise<void>
  append (key: string, message: GroupMessage): Promise<void>
  /** Rewrites a message (its delivery count changed). */
  update (key: string, message: GroupMessage): Promise<void>
  remove (key: string, seqs: number[]): Promise<void>
}
