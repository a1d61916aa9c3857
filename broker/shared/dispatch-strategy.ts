import type { DispatchStrategy } from './group-options.js'

export interface Candidate {
  clientId: string
  inflight: number
  hasRoom: boolean
}

/**
 * Picks the member for one message among `members` (in join order), or
 * returns -1 when the message must wait. `turn` rotates on every pick so ties
 * spread evenly.
 */
export function pickMember (strategy: DispatchStrategy, members: readonly Candidate[], topic: string, turn: number): number {
  const n = members.length
  if (n === 0) return -1
  switch (strategy) {
    case 'hash': {
      // Rendezvous hashing over every member, full or not: one topic keeps
      // its member while the membership is unchanged, and waits for it.
      let best = -1
      let bestScore = -1
      for (let i = 0; i < n; i++) {
        const score = fnv1a(`${(members[i] as Candidate).clientId}\u0000${topic}`)
        if (score > bestScore) { bestScore = score; best = i }
      }
      return (members[best] as Candidate).hasRoom ? best : -1
    }
    case 'random': {
      const free = members.map((m, i) => (m.hasRoom ? i : -1)).filter((i) => i >= 0)
      return free.length === 0 ? -1 : (free[Math.floor(Math.random() * free.length)] as number)
    }
    case 'round-robin': {
      for (let k = 0; k < n; k++) {
        const i = (turn + k) % n
        if ((members[i] as Candidate).hasRoom) return i
      }
      return -1
    }
    case 'least-inflight': {
      let best = -1
      for (let k = 0; k < n; k++) {
        const i = (turn + k) % n
        const m = members[i] as Candidate
        if (m.hasRoom && (best < 0 || m.inflight < (members[best] as Candidate).inflight)) best = i
      }
      return best
    }
  }
}

/** 32-bit FNV-1a: fast, stable across processes (unlike a random seed). */
function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
