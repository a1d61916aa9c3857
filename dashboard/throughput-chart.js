/*
 * Messages per second in and out over the last few minutes (uPlot), from
 * the rates history.js derives from successive snapshots.
 */
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { html } from './html.js'
import { WINDOW_SECONDS } from './history.js'
import { rate } from './format.js'

const HEIGHT = 220
const MIN_SPAN_SECONDS = 30
const hhmm = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' })
const hhmmss = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })
/** Tick labels in local time: seconds only when ticks are less than a minute apart. */
const timeTicks = (_u, ticks, _axis, _space, increment) => ticks.map((t) => (increment < 60 ? hhmmss : hhmm).format(new Date(t * 1000)))
const COLOURS = { in: '#2563eb', out: '#0f9d8a' }

function columns (points) {
  return [points.map((p) => p.t), points.map((p) => p.in), points.map((p) => p.out)]
}

function options (width) {
  const axis = { stroke: '#6b7280', grid: { stroke: '#eef0f3', width: 1 }, ticks: { stroke: '#e3e6ea', width: 1 }, font: '12px system-ui, sans-serif' }
  return {
    width,
    height: HEIGHT,
    padding: [12, 8, 0, 0],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      // The last WINDOW_SECONDS, or less while there is less history (half a minute at least).
      x: { time: true, range: (_u, min, max) => [max - Math.min(WINDOW_SECONDS, Math.max(MIN_SPAN_SECONDS, max - min)), max] },
      y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] }
    },
    series: [
      { label: 'Time', value: (_u, t) => (t === null ? '–' : hhmmss.format(new Date(t * 1000))) },
      { label: 'in /s', stroke: COLOURS.in, fill: 'rgba(37, 99, 235, 0.08)', width: 2, value: (_u, v) => rate(v), spanGaps: false },
      { label: 'out /s', stroke: COLOURS.out, width: 2, value: (_u, v) => rate(v), spanGaps: false }
    ],
    axes: [{ ...axis, space: 80, values: timeTicks }, { ...axis, size: 56, values: (_u, ticks) => ticks.map((v) => rate(v)) }]
  }
}

export function ThroughputChart ({ points }) {
  const box = useRef(null)
  const plot = useRef(null)

  useEffect(() => {
    const element = box.current
    plot.current = new uPlot(options(Math.max(200, element.clientWidth)), columns(points), element)
    // The card's width follows the window (and a phone's rotation).
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }))
    resize.observe(element)
    return () => {
      resize.disconnect()
      plot.current.destroy()
      plot.current = null
    }
  }, [])

  useEffect(() => {
    plot.current?.setData(columns(points))
  }, [points])

  return html`<div class="chart" ref=${box} data-testid="throughput-chart" data-points=${points.length}></div>`
}
