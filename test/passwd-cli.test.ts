import { spawn, spawnSync } from 'node:child_process'
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { hashPassword, parseHash, verifyPassword } from '../broker/security/password-hash.js'
import { parseUsersFile } from '../broker/security/users-file.js'
import { runCli } from './helpers/cli-process.js'
import { tempRoot } from './helpers/temp-root.js'

/*
 * `fleetq passwd <file> <user>` (docs/security.md): asks for the password
 * twice with echo off, or takes it with -b; -D deletes, -c creates; the file
 * is replaced atomically with mode 0600.
 */

const cliPath = fileURLToPath(new URL('../broker/cli.ts', import.meta.url))
const tsxLoader = import.meta.resolve('tsx')
const HASH = /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/

const temp = tempRoot('fleetq-passwd-')
const freshDir = (): Promise<string> => temp.freshDir()

/** The users of a file, by name: their hash strings. */
async function users (file: string): Promise<Record<string, string>> {
  return Object.fromEntries(parseUsersFile(await readFile(file, 'utf8'), file).map((e) => [e.user, e.encoded]))
}

async function matches (file: string, user: string, password: string): Promise<boolean> {
  const encoded = (await users(file))[user]
  return encoded !== undefined && await verifyPassword(password, parseHash(encoded))
}

/** `fleetq passwd …` with `input` on a piped stdin (not a terminal). */
function passwdPiped (args: string[], input: string): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', tsxLoader, cliPath, 'passwd', ...args], { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.end(input)
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stderr })))
}

/** The mode bits of a file. */
async function mode (file: string): Promise<number> {
  return (await stat(file)).mode & 0o777
}

// Each test spawns Node with tsx, which takes seconds on a loaded two-core machine.
describe('fleetq passwd', { timeout: 120_000 }, () => {
  it('-c -b creates the file, mode 0600, one user:$scrypt$ line', async () => {
    const file = join(await freshDir(), 'users')
    const created = await runCli(['passwd', '-c', '-b', file, 'alice', 'pw-alice'])
    expect(created).toMatchObject({ code: 0, stderr: '' })
    expect(await mode(file)).toBe(0o600)
    const text = await readFile(file, 'utf8')
    expect(text).toMatch(/^alice:\S+\n$/)
    expect((await users(file))['alice']).toMatch(HASH)
    expect(await matches(file, 'alice', 'pw-alice')).toBe(true)
    expect(await matches(file, 'alice', 'pw-alicE')).toBe(false)
    // Nothing but the file is left behind (the temporary file was renamed over it).
    expect(await readdir(join(file, '..'))).toEqual(['users'])
  })

  it('-b adds a user and changes a password, leaving the other lines; -c starts over', async () => {
    const file = join(await freshDir(), 'users')
    expect((await runCli(['passwd', '-c', '-b', file, 'alice', 'pw-a'])).code).toBe(0)
    const alice = (await users(file))['alice']
    expect((await runCli(['passwd', '-b', file, 'bob', 'pw-b'])).code).toBe(0)
    expect(Object.keys(await users(file))).toEqual(['alice', 'bob'])
    expect((await users(file))['alice']).toBe(alice)
    // A file someone made readable goes back to 0600 when rewritten.
    await chmod(file, 0o644)
    expect((await runCli(['passwd', '-b', file, 'alice', 'pw-a2'])).code).toBe(0)
    expect(await mode(file)).toBe(0o600)
    expect(Object.keys(await users(file))).toEqual(['alice', 'bob'])
    expect(await matches(file, 'alice', 'pw-a2')).toBe(true)
    expect(await matches(file, 'alice', 'pw-a')).toBe(false)
    expect(await matches(file, 'bob', 'pw-b')).toBe(true)

    expect((await runCli(['passwd', '-c', '-b', file, 'carol', 'pw-c'])).code).toBe(0)
    expect(Object.keys(await users(file))).toEqual(['carol'])
  })

  it('-D deletes a user; deleting one that is not there fails with one line', async () => {
    const file = join(await freshDir(), 'users')
    await runCli(['passwd', '-c', '-b', file, 'alice', 'pw-a'])
    await runCli(['passwd', '-b', file, 'bob', 'pw-b'])
    expect((await runCli(['passwd', '-D', file, 'alice'])).code).toBe(0)
    expect(Object.keys(await users(file))).toEqual(['bob'])
    expect(await mode(file)).toBe(0o600)
    const missing = await runCli(['passwd', '-D', file, 'alice'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`fleetq passwd: user "alice" is not in ${file}`)
  })

  it('refuses a password argument without -b, and other misuse, with exit 2 and nothing written', async () => {
    const dir = await freshDir()
    const file = join(dir, 'users')
    const asArgument = await runCli(['passwd', '-c', file, 'alice', 'pw'])
    expect(asArgument.code).toBe(2)
    expect(asArgument.stderr).toBe('fleetq passwd: the password is not taken as an argument: leave it out to be asked for it, or use -b for batch use')
    expect((await runCli(['passwd', '-b', '-c', file, 'alice'])).stderr).toBe('fleetq passwd: -b needs the password after the user name')
    expect((await runCli(['passwd', '-D', '-c', file, 'alice'])).code).toBe(2)
    expect((await runCli(['passwd', '-c', '-b', file, 'al:ice', 'pw'])).stderr).toBe('fleetq passwd: a user name cannot contain ":"')
    expect(await readdir(dir)).toEqual([])
    // Without -c the file must exist; it is read before any password is asked.
    const absent = await runCli(['passwd', '-b', file, 'alice', 'pw'])
    expect(absent.code).toBe(1)
    expect(absent.stderr).toBe(`fleetq passwd: ${file}: cannot read it: no such file (-c creates it)`)
  })

  it('reads the password from stdin when it is not a terminal: two matching lines, or one', async () => {
    const file = join(await freshDir(), 'users')
    expect(await passwdPiped(['-c', file, 'alice'], 'piped pw\npiped pw\n')).toEqual({ code: 0, stderr: '' })
    expect(await matches(file, 'alice', 'piped pw')).toBe(true)
    expect(await passwdPiped([file, 'bob'], 'one line\n')).toEqual({ code: 0, stderr: '' })
    expect(await matches(file, 'bob', 'one line')).toBe(true)

    const before = await readFile(file, 'utf8')
    expect(await passwdPiped([file, 'alice'], 'first\nsecond\n')).toEqual({ code: 1, stderr: 'fleetq passwd: the passwords do not match\n' })
    expect(await passwdPiped([file, 'alice'], '')).toMatchObject({ code: 1 })
    expect(await passwdPiped([file, 'alice'], '\n\n')).toEqual({ code: 1, stderr: 'fleetq passwd: the password is empty\n' })
    expect(await readFile(file, 'utf8')).toBe(before)
  })

  // A real pseudo-terminal through util-linux `script`: the prompts, and no echo of what is typed.
  const hasScript = spawnSync('script', ['--version']).status === 0
  it.skipIf(!hasScript)('on a terminal, asks twice with echo off', async () => {
    const file = join(await freshDir(), 'users')
    await writeFile(file, '')
    const command = [process.execPath, '--import', tsxLoader, cliPath, 'passwd', file, 'alice'].map((a) => `'${a}'`).join(' ')
    const child = spawn('script', ['-qefc', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let screen = ''
    let typed = 0
    child.stdout.on('data', (chunk: Buffer) => {
      screen += chunk.toString()
      // Typed only once each prompt is shown: raw mode is on by then.
      if (typed === 0 && screen.includes('Password: ')) { typed = 1; child.stdin.write('tty secret\r') }
      if (typed === 1 && screen.includes('Reenter password: ')) { typed = 2; child.stdin.write('tty secret\r') }
    })
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    child.stdin.end()
    expect(code).toBe(0)
    expect(screen).toBe('Password: \r\nReenter password: \r\n')
    expect(await matches(file, 'alice', 'tty secret')).toBe(true)
  })
})

describe('password hashes', () => {
  it('are self-describing scrypt strings with a fresh salt each time', async () => {
    const a = await hashPassword('same')
    const b = await hashPassword('same')
    expect(a).toMatch(HASH)
    expect(a).not.toBe(b)
    expect(await verifyPassword('same', parseHash(a))).toBe(true)
    expect(await verifyPassword(Buffer.from('same'), parseHash(b))).toBe(true)
    expect(await verifyPassword('Same', parseHash(a))).toBe(false)
    // Other parameters are read from the string itself.
    const cheap = await hashPassword('pw', { N: 1024, r: 8, p: 1 })
    expect(cheap).toMatch(/^\$scrypt\$N=1024,r=8,p=1\$/)
    expect(await verifyPassword('pw', parseHash(cheap))).toBe(true)
  })

  it('refuse strings they cannot use, and costs that would exhaust memory', () => {
    expect(() => parseHash('$2y$10$bcrypt')).toThrow('not a $scrypt$')
    expect(() => parseHash('$scrypt$N=1000,r=8,p=1$c2FsdHNhbHRzYWx0$' + 'A'.repeat(43) + '=')).toThrow('N must be a power of two')
    expect(() => parseHash('$scrypt$N=1073741824,r=8,p=1$c2FsdHNhbHRzYWx0$' + 'A'.repeat(43) + '=')).toThrow('N must be a power of two from 2 to 1048576')
  })
})
