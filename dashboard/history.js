/*
 * Rates from successive snapshots. The API gives counters since start
 * (traffic, groups' enqueued and acked); a rate is the difference of two
 * snapshots over the time between them. Kept for the last few minutes, the
 * throughput chart's window.
 */

export const WINDOW_SECONDS = 300

/** Per second from a counter at two snapshots; null before the second one or after a restart (counter went down). */
function perSecond (before, after, seconds) {
  if (before === undefined || after === undefined || seconds <= 0 || after < before) return null
  return (after - before) / seconds
}

/**
 * Adds a snapshot to the history and returns the new history:
 * `{ points: [{ t, in, out }], rates: { in, out, groups: { [key]: { in, done } } }, last }`.
 * `t` is in seconds (uPlot's x unit), taken on arrival.
 */
export function addSnapshot (history, snapshot, nowMs = Date.now()) {
  const t = nowMs / 1000
  const traffic = snapshot.status.traffic
  const groups = {}
  for (const g of snapshot.groups) groups[g.key] = { enqueued: g.counters.enqueued, acked: g.counters.acked }
  const sample = { t, received: traffic.messagesReceived, sent: traffic.messagesSent, groups, startedAt: snapshot.status.startedAt }

  const last = history.last
  // A broker restart resets every counter: start over rather than draw a negative rate.
  if (last === null || last.startedAt !== sample.startedAt) {
    return { points: history.points, rates: { in: null, out: null, groups: {} }, last: sample }
  }
  const seconds = t - last.t
  if (seconds < 0.2) return history
  const rates = {
    in: perSecond(last.received, sample.received, seconds),
    out: perSecond(last.sent, sample.sent, seconds),
    groups: {}
  }
  for (const [key, now] of Object.entries(groups)) {
    const before = last.groups[key]
    rates.groups[key] = { in: perSecond(before?.enqueued, now.enqueued, seconds), done: perSecond(before?.acked, now.acked, seconds) }
  }
  const points = history.points.filter((p) => p.t >= t - WINDOW_SECONDS)
  points.push({ t, in: rates.in, out: rates.out })
  return { points, rates, last: sample }
}

export const emptyHistory = () => ({ points: [], rates: { in: null, out: null, groups: {} }, last: null })
