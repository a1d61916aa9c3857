/*
 * Data the snapshot feed does not carry (clients, retained messages): fetched
 * when the page opens and again every few seconds while it stays open.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { get } from './api.js'

export function usePoll (path, intervalMs = 5000) {
  const [state, setState] = useState({ data: null, error: null })
  const latest = useRef(path)
  latest.current = path
  const refresh = useCallback(async () => {
    const asked = latest.current
    try {
      const data = await get(asked)
      if (asked === latest.current) setState({ data, error: null })
    } catch (err) {
      if (asked === latest.current) setState((s) => ({ data: s.data, error: err.message }))
    }
  }, [])
  useEffect(() => {
    refresh()
    const timer = setInterval(refresh, intervalMs)
    return () => clearInterval(timer)
  }, [path, intervalMs])
  return { ...state, refresh }
}
