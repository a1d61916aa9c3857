import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AclFileError, loadAcl, parseAcl } from '../broker/security/acl-file.js'
import { filterCovers, topicMatches } from '../broker/security/acl.js'
import type { ClientInfo } from '../broker/types/mqtt.js'
import { tempRoot } from './helpers/temp-root.js'

const root = tempRoot('fleetq-acl-')

const anonymous = (id = 'c1'): ClientInfo => ({ id, clean: true })
const user = (username: string, id = 'c1'): ClientInfo => ({ id, clean: true, username })

/** The AclFileError `text` throws. */
function parseError (text: string): AclFileError {
  try {
    parseAcl(text)
  } catch (err) {
    expect(err).toBeInstanceOf(AclFileError)
    return err as AclFileError
  }
  throw new Error('expected an AclFileError')
}

describe('parsing', () => {
  it.each([
    ['an unknown keyword', 'topic a/b\n\ntopc a/b', 3, 'topc a/b', 'unknown keyword "topc"'],
    ['a bad access word', '# rules\ntopic reed a/b', 2, 'topic reed a/b', 'unknown access "reed"'],
    ['an access word without a filter', 'topic read', 1, 'topic read', '"topic" needs a topic filter'],
    ['a topic line without a filter', 'user alice\n  topic  ', 2, 'topic', '"topic" needs a topic filter'],
    ['"#" not last', 'topic read a/#/b', 1, 'topic read a/#/b', '"#" must be a whole level and the last one'],
    ['"#" not a whole level', 'pattern write a/b#', 1, 'pattern write a/b#', '"#" must be a whole level'],
    ['"+" not a whole level', 'user bob\ntopic a+/b', 2, 'topic a+/b', '"+" must be a whole level'],
    ['a NUL', 'topic a/\u0000', 1, 'topic a/\u0000', 'cannot contain NUL'],
    ['a user line without a name', 'user', 1, 'user', '"user" needs a user name']
  ])('refuses %s, naming the line', (_what, text, line, lineText, reason) => {
    const err = parseError(text)
    expect(err).toMatchObject({ name: 'AclFileError', line })
    expect(err.message).toContain(`line ${line} (${JSON.stringify(lineText)})`)
    expect(err.message).toContain(reason)
  })

  it('ignores blank lines, comments and surrounding spaces, with LF or CRLF', () => {
    const acl = parseAcl('# a comment\r\n\r\n   # an indented comment\r\n\t topic read a/b  \r\n\n   \nuser alice\r\n  topic c  \n')
    expect(acl.ruleCount).toBe(2)
    expect(acl.users).toBe(1)
    expect(acl.mayReceive(anonymous(), 'a/b')).toBe(true)
    expect(acl.mayPublish(user('alice'), 'c')).toBe(true)
  })

  it('takes the rest of the line as the filter after an access word, and as the user name', () => {
    const acl = parseAcl('user Ada Lovelace\ntopic readwrite rooms/living room/#')
    expect(acl.mayPublish(user('Ada Lovelace'), 'rooms/living room/lamp')).toBe(true)
    expect(acl.mayPublish(user('Ada'), 'rooms/living room/lamp')).toBe(false)
  })

  it('counts rules and user sections, merging a user named twice', () => {
    const acl = parseAcl('topic a\nuser alice\ntopic read b\nuser bob\ntopic c\nuser alice\ntopic write d\npattern e/%c')
    expect(acl.ruleCount).toBe(5)
    expect(acl.users).toBe(2)
    expect(acl.mayReceive(user('alice'), 'b')).toBe(true)
    expect(acl.mayPublish(user('alice'), 'd')).toBe(true)
    expect(acl.mayPublish(user('alice'), 'c')).toBe(false)
  })
})

describe('sections', () => {
  const acl = parseAcl([
    'topic read public/#',
    'user alice',
    'topic alice/#',
    'user bob',
    'topic read bob/#'
  ].join('\n'))

  it('gives topic lines before any user line to anonymous clients only', () => {
    expect(acl.mayReceive(anonymous(), 'public/news')).toBe(true)
    expect(acl.mayReceive(user('alice'), 'public/news')).toBe(false)
    expect(acl.mayReceive(user('carol'), 'public/news')).toBe(false)
  })

  it('gives a user section to that user only', () => {
    expect(acl.mayPublish(user('alice'), 'alice/x')).toBe(true)
    expect(acl.mayPublish(user('bob'), 'alice/x')).toBe(false)
    expect(acl.mayPublish(anonymous(), 'alice/x')).toBe(false)
    expect(acl.mayReceive(user('bob'), 'bob/x')).toBe(true)
  })

  it('gives a user without a section nothing', () => {
    for (const topic of ['public/news', 'alice/x', 'bob/x', 'other']) {
      expect(acl.mayPublish(user('carol'), topic)).toBe(false)
      expect(acl.mayReceive(user('carol'), topic)).toBe(false)
    }
    expect(acl.maySubscribe(user('carol'), '#')).toBe(false)
  })

  it('denies everything to everyone when the file has no rules', () => {
    const empty = parseAcl('# nothing yet\n')
    expect(empty.ruleCount).toBe(0)
    expect(empty.users).toBe(0)
    for (const client of [anonymous(), user('alice')]) {
      expect(empty.mayPublish(client, 'a')).toBe(false)
      expect(empty.mayReceive(client, 'a')).toBe(false)
      expect(empty.maySubscribe(client, 'a')).toBe(false)
    }
  })
})

describe('access', () => {
  const acl = parseAcl([
    'topic both/#',
    'topic read in/#',
    'topic write out/#',
    'topic readwrite rw/#'
  ].join('\n'))
  const client = anonymous()

  it('defaults to readwrite', () => {
    expect(acl.mayPublish(client, 'both/x')).toBe(true)
    expect(acl.mayReceive(client, 'both/x')).toBe(true)
    expect(acl.maySubscribe(client, 'both/#')).toBe(true)
    expect(acl.mayPublish(client, 'rw/x')).toBe(true)
    expect(acl.mayReceive(client, 'rw/x')).toBe(true)
  })

  it('read lets a client receive and subscribe but not publish', () => {
    expect(acl.mayReceive(client, 'in/x')).toBe(true)
    expect(acl.maySubscribe(client, 'in/+')).toBe(true)
    expect(acl.mayPublish(client, 'in/x')).toBe(false)
  })

  it('write lets a client publish but not receive or subscribe', () => {
    expect(acl.mayPublish(client, 'out/x')).toBe(true)
    expect(acl.mayReceive(client, 'out/x')).toBe(false)
    expect(acl.maySubscribe(client, 'out/x')).toBe(false)
  })

  it('refuses a topic no rule matches', () => {
    expect(acl.mayPublish(client, 'elsewhere')).toBe(false)
    expect(acl.mayReceive(client, 'elsewhere')).toBe(false)
  })
})

describe('deny', () => {
  it('wins over an allow, before or after it in the file', () => {
    for (const text of ['topic fleet/#\ntopic deny fleet/secret/#', 'topic deny fleet/secret/#\ntopic fleet/#']) {
      const acl = parseAcl(text)
      expect(acl.mayPublish(anonymous(), 'fleet/secret/key')).toBe(false)
      expect(acl.mayReceive(anonymous(), 'fleet/secret')).toBe(false)
      expect(acl.mayPublish(anonymous(), 'fleet/public')).toBe(true)
      expect(acl.mayReceive(anonymous(), 'fleet/public')).toBe(true)
    }
  })

  it('from a pattern applies to user sections too', () => {
    const acl = parseAcl('user alice\ntopic #\npattern deny private/%c/#')
    expect(acl.mayPublish(user('alice', 'dev1'), 'private/dev1/x')).toBe(false)
    expect(acl.mayPublish(user('alice', 'dev1'), 'private/dev2/x')).toBe(true)
  })

  it('refuses a subscription it covers, and grants one it overlaps in part', () => {
    const acl = parseAcl('topic fleet/#\ntopic deny fleet/secret/#')
    const client = anonymous()
    expect(acl.maySubscribe(client, 'fleet/secret/#')).toBe(false)
    expect(acl.maySubscribe(client, 'fleet/secret/+/x')).toBe(false)
    expect(acl.maySubscribe(client, 'fleet/secret')).toBe(false)
    // Partial overlap: granted, and the deliveries are filtered.
    expect(acl.maySubscribe(client, 'fleet/#')).toBe(true)
    expect(acl.maySubscribe(client, 'fleet/+/x')).toBe(true)
    expect(acl.mayReceive(client, 'fleet/secret/x')).toBe(false)
    expect(acl.mayReceive(client, 'fleet/a/x')).toBe(true)
  })
})

describe('patterns', () => {
  it('substitutes %c with the client id, for every client', () => {
    const acl = parseAcl('pattern readwrite fleet/%c/#')
    expect(acl.mayPublish(user('alice', 'dev1'), 'fleet/dev1/t')).toBe(true)
    expect(acl.mayPublish(user('alice', 'dev1'), 'fleet/dev2/t')).toBe(false)
    expect(acl.mayPublish(anonymous('dev1'), 'fleet/dev1/t')).toBe(true)
    expect(acl.mayPublish(anonymous('dev1'), 'fleet/dev2/t')).toBe(false)
    expect(acl.maySubscribe(anonymous('dev1'), 'fleet/dev1/#')).toBe(true)
    expect(acl.maySubscribe(anonymous('dev1'), 'fleet/+/#')).toBe(false)
  })

  it('substitutes %u with the user name, and never matches an anonymous client', () => {
    const acl = parseAcl('pattern write users/%u/out\npattern read users/%u/in')
    expect(acl.mayPublish(user('alice'), 'users/alice/out')).toBe(true)
    expect(acl.mayReceive(user('alice'), 'users/alice/in')).toBe(true)
    expect(acl.mayReceive(user('alice'), 'users/alice/out')).toBe(false)
    expect(acl.mayPublish(user('alice'), 'users/bob/out')).toBe(false)
    expect(acl.mayPublish(anonymous(), 'users/%u/out')).toBe(false)
    expect(acl.mayPublish(anonymous(), 'users//out')).toBe(false)
    expect(acl.mayPublish(anonymous(), 'users/+/out')).toBe(false)
  })

  it('substitutes within a level, both placeholders at once', () => {
    const acl = parseAcl('pattern t/%u-%c/#')
    expect(acl.mayPublish(user('alice', 'dev1'), 't/alice-dev1/x')).toBe(true)
    expect(acl.mayPublish(user('alice', 'dev1'), 't/alice-dev2/x')).toBe(false)
  })

  it('does not substitute into what it has substituted', () => {
    const acl = parseAcl('pattern t/%u/%c')
    expect(acl.mayPublish(user('%c', 'dev1'), 't/%c/dev1')).toBe(true)
    expect(acl.mayPublish(user('%c', 'dev1'), 't/dev1/dev1')).toBe(false)
  })

  it.each(['a/#', '#', '+', 'a/b', 'x+y'])('gives a client id %j no pattern rights', (id) => {
    const acl = parseAcl('pattern fleet/%c/#\npattern any/#')
    const client = anonymous(id)
    expect(acl.mayPublish(client, `fleet/${id}/t`)).toBe(false)
    expect(acl.mayPublish(client, 'fleet/other/t')).toBe(false)
    expect(acl.maySubscribe(client, `fleet/${id}`)).toBe(false)
    expect(acl.maySubscribe(client, 'fleet/#')).toBe(false)
    // A pattern without %c still applies.
    expect(acl.mayPublish(client, 'any/t')).toBe(true)
  })

  it.each(['a/#', '#', '+', 'a/b'])('gives a user name %j no %u rights, but keeps its %c rights', (username) => {
    const acl = parseAcl('pattern users/%u/#\npattern devices/%c/#')
    const client = user(username, 'dev1')
    expect(acl.mayPublish(client, `users/${username}/t`)).toBe(false)
    expect(acl.mayPublish(client, 'users/a/b/t')).toBe(false)
    expect(acl.maySubscribe(client, 'users/#')).toBe(false)
    expect(acl.mayPublish(client, 'devices/dev1/t')).toBe(true)
  })

  it('gives an empty user name or client id no pattern rights', () => {
    const acl = parseAcl('pattern t/%u/x\npattern d/%c/x')
    expect(acl.mayPublish(user('', 'dev1'), 't//x')).toBe(false)
    expect(acl.mayPublish(anonymous(''), 'd//x')).toBe(false)
  })

  it('follows a client object whose identity changes', () => {
    const acl = parseAcl('pattern fleet/%c/#')
    const info: { id: string, clean: boolean } = { id: 'dev1', clean: true }
    expect(acl.mayPublish(info, 'fleet/dev1/t')).toBe(true)
    info.id = 'dev2'
    expect(acl.mayPublish(info, 'fleet/dev1/t')).toBe(false)
    expect(acl.mayPublish(info, 'fleet/dev2/t')).toBe(true)
  })

  it('answers for each client, asked again and again', () => {
    const acl = parseAcl('pattern fleet/%c/#')
    const one = anonymous('dev1')
    const two = anonymous('dev2')
    for (let i = 0; i < 3; i++) {
      expect(acl.mayReceive(one, 'fleet/dev1/x')).toBe(true)
      expect(acl.mayReceive(two, 'fleet/dev1/x')).toBe(false)
      expect(acl.mayReceive(two, 'fleet/dev2/x')).toBe(true)
    }
  })
})

describe('topic matching', () => {
  it('does not match a $ topic with a rule starting with a wildcard [MQTT-4.7.2-1]', () => {
    const acl = parseAcl('topic #\ntopic +/x')
    expect(acl.mayReceive(anonymous(), '$SYS/x')).toBe(false)
    expect(acl.mayPublish(anonymous(), '$SYS/x')).toBe(false)
    expect(acl.maySubscribe(anonymous(), '$SYS/#')).toBe(false)
    expect(acl.mayReceive(anonymous(), 'a/x')).toBe(true)
    expect(acl.mayReceive(anonymous(), 'SYS/x')).toBe(true)
  })

  it('matches a $ topic with a rule naming its first level', () => {
    const acl = parseAcl('topic read $SYS/#')
    expect(acl.mayReceive(anonymous(), '$SYS/broker/uptime')).toBe(true)
    expect(acl.maySubscribe(anonymous(), '$SYS/+/uptime')).toBe(true)
  })

  // [filter, topic, matches], checked both through a rule and against protocol/topic-match.ts.
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'a/b', true],
    ['#', '/', true],
    ['+/+', '/x', true],
    ['+', '/x', false],
    ['a//b', 'a//b', true],
    ['a/+/b', 'a//b', true],
    ['a//b', 'a/b', false],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS', true],
    ['A/b', 'a/b', false]
  ]

  it.each(cases)('rule %j and topic %j: %s', (filter, topic, matches) => {
    const acl = parseAcl(`topic ${filter}`)
    expect(acl.mayPublish(anonymous(), topic)).toBe(matches)
    expect(acl.mayReceive(anonymous(), topic)).toBe(matches)
    expect(topicMatches(filter, topic)).toBe(matches)
  })
})

describe('subscribe coverage', () => {
  // [rule, filter, covers]
  const cases: Array<[string, string, boolean]> = [
    ['fleet/#', 'fleet/+/x', true],
    ['fleet/#', 'fleet/#', true],
    ['fleet/#', 'fleet', true],
    ['fleet/a/#', 'fleet/#', false],
    ['fleet/a/#', 'fleet/a/#', true],
    ['fleet/+/x', 'fleet/a/x', true],
    ['fleet/+/x', 'fleet/+/x', true],
    ['fleet/+/x', 'fleet/#', false],
    ['fleet/+/x', 'fleet/+/#', false],
    ['fleet/+/x', 'fleet/+', false],
    ['fleet/+', 'fleet/#', false],
    ['fleet/a/x', 'fleet/+/x', false],
    ['fleet/a', 'fleet/a/#', false],
    ['fleet/a', 'fleet/a', true],
    ['#', '#', true],
    ['#', '+/x', true],
    ['#', '$SYS/#', false],
    ['+/#', '$SYS/x', false],
    ['$SYS/#', '$SYS/#', true],
    ['+/+', '+/+', true],
    ['+/+', '+/#', false],
    ['a/+/#', 'a', false],
    ['a/+/#', 'a/b', true]
  ]

  it.each(cases)('rule %j covers filter %j: %s', (rule, filter, covers) => {
    expect(filterCovers(rule, filter)).toBe(covers)
    expect(parseAcl(`topic read ${rule}`).maySubscribe(anonymous(), filter)).toBe(covers)
  })

  it('needs one rule covering the whole filter, not several covering parts', () => {
    const acl = parseAcl('topic read fleet/a/#\ntopic read fleet/b/#')
    expect(acl.maySubscribe(anonymous(), 'fleet/a/x')).toBe(true)
    expect(acl.maySubscribe(anonymous(), 'fleet/+/x')).toBe(false)
  })
})

describe('loadAcl', () => {
  it('reads and parses a file', async () => {
    const path = join(await root.freshDir('acl'), 'acl')
    await writeFile(path, 'user alice\ntopic read fleet/#\n')
    const acl = await loadAcl(path)
    expect(acl.ruleCount).toBe(1)
    expect(acl.users).toBe(1)
    expect(acl.mayReceive(user('alice'), 'fleet/x')).toBe(true)
    expect(acl.mayPublish(user('alice'), 'fleet/x')).toBe(false)
  })

  it('rejects with the line of a bad file', async () => {
    const path = join(await root.freshDir('acl'), 'acl')
    await writeFile(path, 'user alice\ntopic rd fleet/#\n')
    await expect(loadAcl(path)).rejects.toMatchObject({ name: 'AclFileError', line: 2 })
  })

  it('lets a read error through', async () => {
    const path = join(await root.freshDir('acl'), 'missing')
    await expect(loadAcl(path)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
