import type { Readable, Writable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'

/** Ctrl-C or Ctrl-D at a password prompt. */
export class PromptAborted extends Error {
  constructor () {
    super('aborted')
    this.name = 'PromptAborted'
  }
}

/** A terminal's input stream: raw mode is what turns its echo off. */
export interface TerminalInput extends Readable {
  isTTY: true
  setRawMode (mode: boolean): unknown
}

/**
 * Asks each of `prompts` in turn on a terminal, with echo off (raw mode: the
 * terminal shows nothing of what is typed), and resolves with the answers.
 * Backspace and Ctrl-U edit; Ctrl-C, or Ctrl-D on an empty answer, abort.
 * One raw session for all prompts, so answers typed ahead are kept.
 */
export function askHidden (input: TerminalInput, output: Writable, prompts: readonly string[]): Promise<string[]> {
  return new Promise<string[]>((resolve, reject) => {
    const answers: string[] = []
    const decoder = new StringDecoder('utf8')
    let current = ''
    let afterCr = false
    const finish = (): void => {
      input.off('data', onData)
      input.setRawMode(false)
      input.pause()
    }
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk)
      for (const char of text) {
        // A CR LF pair (pasted text) ends one answer, not two.
        const skip = afterCr && char === '\n'
        afterCr = char === '\r'
        if (skip) continue
        if (char === '\r' || char === '\n') {
          output.write('\n')
          answers.push(current)
          current = ''
          if (answers.length === prompts.length) {
            finish()
            resolve(answers)
            return
          }
          output.write(prompts[answers.length] ?? '')
        } else if (char === '\u0003' || (char === '\u0004' && current === '')) {
          output.write('\n')
          finish()
          reject(new PromptAborted())
          return
        } else if (char === '\u007f' || char === '\b') {
          current = [...current].slice(0, -1).join('')
        } else if (char === '\u0015') {
          current = ''
        } else if (char >= ' ') {
          current += char
        }
      }
    }
    // Echo off before the prompt shows: what is typed as soon as it appears is not echoed.
    input.setRawMode(true)
    output.write(prompts[0] ?? '')
    input.on('data', onData)
    input.resume()
  })
}

/**
 * Reads `input` to its end and returns its lines (a trailing newline ends
 * the last one, it does not add an empty one): the answers when stdin is a
 * pipe rather than a terminal.
 */
export async function readLines (input: Readable): Promise<string[]> {
  const chunks: Buffer[] = []
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  if (text === '') return []
  const lines = text.split(/\r?\n/)
  if (lines.at(-1) === '') lines.pop()
  return lines
}
