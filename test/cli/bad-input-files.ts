/** Bad-input cases: NDJSON files for publish, flags and environment values, state paths. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makeEnvelope } from '../../src/records/envelope.js';
import { sampleEnvelopes } from '../helpers/envelopes.js';
import { testBrokers } from '../helpers/kafka.js';
import {
  cli,
  expectPublished,
  file,
  publishLines,
  type BadInputCase,
  type Ctx,
} from './bad-input-support.js';

const good = sampleEnvelopes(3, 3);
const g = (i: number) => JSON.stringify(good[i]!);
const CRM_DOWN = { SYNCCTL_CRM_URL: 'http://127.0.0.1:1', SYNCCTL_CRM_TOKEN: 'token' };

function withEnvelope(patch: Record<string, unknown>): string {
  return JSON.stringify({ ...good[0]!, ...patch });
}

/** A fetch that fails at its first request, so only the flag check under test can stop it earlier. */
function fetchCrm(args: string[], env: Record<string, string> = {}) {
  const full = args.includes('--since') ? [] : ['--full'];
  return cli(['fetch', '--source', 'crm', ...full, '--crm-retries', '0', ...args], { ...CRM_DOWN, ...env });
}

/** A command that opens the state store and nothing else first. */
function exportWithState(ctx: Ctx, state: string) {
  return cli(['--state', state, 'export-csv', '--out', file(ctx, 'out.csv')]);
}

const ndjson: BadInputCase[] = [
  {
    area: 'NDJSON file',
    input: 'UTF-8 byte-order mark before the first line',
    does: 'publishes the line (the BOM is ignored)',
    exit: 0,
    says: [],
    run: (ctx) => publishLines(ctx, 'bom', Buffer.from(`\uFEFF${g(0)}\n${g(1)}\n`)),
    kept: (_c, run) => expectPublished(run as never, 2),
  },
  {
    area: 'NDJSON file',
    input: 'CRLF line endings',
    does: 'publishes every line',
    exit: 0,
    says: [],
    run: (ctx) => publishLines(ctx, 'crlf', Buffer.from(`${g(0)}\r\n${g(1)}\r\n${g(2)}\r\n`)),
    kept: (_c, run) => expectPublished(run as never, 3),
  },
  {
    area: 'NDJSON file',
    input: 'a line that is not valid UTF-8',
    does: 'rejects the line (reject file, line number), publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) =>
      publishLines(ctx, 'utf8', [good[0]!, Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /invalid UTF-8/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a 20 MB line',
    does: 'rejects the line as too large, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) =>
      publishLines(ctx, 'huge', [
        good[0]!,
        withEnvelope({ data: { blob: 'x'.repeat(20 * 1024 * 1024) } }),
        good[1]!,
      ]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /large|long|size|bytes/i]]),
    boundMs: 40_000,
  },
  {
    area: 'NDJSON file',
    input: 'a line larger than `--max-record-bytes`',
    does: 'rejects the line (its length and the limit), never holds it whole, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) =>
      publishLines(
        ctx,
        'over-record-limit',
        [good[0]!, withEnvelope({ data: { blob: 'x'.repeat(64 * 1024) } }), good[1]!],
        ['--max-record-bytes', '32768'],
      ),
    kept: (_c, run) =>
      expectPublished(run as never, 2, [[2, /over the 32768-byte limit \(--max-record-bytes\)/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a JSON array line',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'array', [good[0]!, '[1,2,3]', good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /line is an array, not a JSON object/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a bare number line',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'number', [good[0]!, '42', good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /line is a number/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a `null` line',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'null', [good[0]!, 'null', good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /line is null/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a JSON string line',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'string', [good[0]!, '"C1"', good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /line is a string/]]),
  },
  {
    area: 'NDJSON file',
    input: 'JSON cut short',
    does: 'rejects the line as bad JSON, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'cut', [good[0]!, g(1).slice(0, 40), good[2]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /bad JSON/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a content hash that does not match the data',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) =>
      publishLines(ctx, 'hash', [good[0]!, withEnvelope({ contentHash: 'f'.repeat(64) }), good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /hash/i]]),
  },
  {
    area: 'NDJSON file',
    input: 'an idempotency key that does not match entity, id and hash',
    does: 'rejects the line, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'idem', [good[0]!, withEnvelope({ idempotencyKey: 'nope' }), good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /idempotency/i]]),
  },
  {
    area: 'NDJSON file',
    input: 'unknown extra fields in an envelope',
    does: 'rejects the line naming the field, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'extra', [good[0]!, withEnvelope({ surprise: 1 }), good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /surprise/]]),
  },
  {
    area: 'NDJSON file',
    input: 'an unknown source / operation value',
    does: 'rejects the line naming the field, publishes the rest',
    exit: 3,
    says: [/2 line\(s\) rejected/],
    run: (ctx) =>
      publishLines(ctx, 'enum', [
        good[0]!,
        withEnvelope({ source: 'erp' }),
        withEnvelope({ op: 'merge' }),
        good[1]!,
      ]),
    kept: (_c, run) =>
      expectPublished(run as never, 2, [
        [2, /source/],
        [3, /op/],
      ]),
  },
  {
    area: 'NDJSON file',
    input: 'a missing required field (id)',
    does: 'rejects the line naming the field, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => {
      const e = { ...good[0]! } as Record<string, unknown>;
      delete e.id;
      return publishLines(ctx, 'noid', [JSON.stringify(e), good[1]!]);
    },
    kept: (_c, run) => expectPublished(run as never, 1, [[1, /"id"/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a product envelope for the customer topic',
    does: 'rejects the line (wrong entity for the topic)',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => {
      const product = makeEnvelope({
        source: 'inventory',
        id: 'P1',
        op: 'upsert',
        data: {},
        sourceUpdatedAt: null,
      });
      const path = file(ctx, 'entity.ndjson');
      writeFileSync(path, `${JSON.stringify(product)}\n${g(0)}\n`);
      return cli([
        '--json',
        'publish',
        '--topic',
        'customer_data',
        '--in',
        path,
        '--rejects',
        `${path}.rejects`,
        '--dry-run',
      ]).then((run) => ({ ...run, rejects: `${path}.rejects` }));
    },
    kept: (_c, run) => expectPublished(run as never, 1, [[1, /product|entity/]]),
  },
  {
    area: 'NDJSON file',
    input: 'a line with a NUL byte and control characters',
    does: 'rejects the line as bad JSON, publishes the rest',
    exit: 3,
    says: [/1 line\(s\) rejected/],
    run: (ctx) => publishLines(ctx, 'nul', [good[0]!, Buffer.from('{"a":\u0000}'), good[1]!]),
    kept: (_c, run) => expectPublished(run as never, 2, [[2, /bad JSON/]]),
  },
  {
    area: 'NDJSON file',
    input: 'an empty file',
    does: 'publishes nothing and says so',
    exit: 0,
    says: [],
    run: (ctx) => publishLines(ctx, 'empty', Buffer.alloc(0)),
    kept: (_c, run) => expectPublished(run as never, 0),
  },
  {
    area: 'NDJSON file',
    input: 'blank lines only',
    does: 'publishes nothing, rejects nothing',
    exit: 0,
    says: [],
    run: (ctx) => publishLines(ctx, 'blank', Buffer.from('\n\n  \n\n')),
    kept: (_c, run) => expectPublished(run as never, 0),
  },
  {
    area: 'NDJSON file',
    input: 'no newline after the last line',
    does: 'publishes the last line too',
    exit: 0,
    says: [],
    run: (ctx) => publishLines(ctx, 'noeol', Buffer.from(`${g(0)}\n${g(1)}`)),
    kept: (_c, run) => expectPublished(run as never, 2),
  },
  {
    area: 'NDJSON file',
    input: '`--in` file that does not exist',
    does: 'failure naming the path',
    exit: 1,
    says: [
      (ctx) =>
        new RegExp(`cannot read the input file ${ctx.dir}/no-such\\.ndjson: no such file \\(ENOENT\\)$`, 'm'),
    ],
    run: (ctx) =>
      cli(['-b', testBrokers(), 'publish', '--topic', ctx.topic, '--in', join(ctx.dir, 'no-such.ndjson')]),
  },
];

const flags: BadInputCase[] = [
  ...(
    [
      ['--batch-size', '0', 'publish'],
      ['--batch-size', '-5', 'publish'],
      ['--batch-size', 'lots', 'publish'],
      ['--batch-size', '1.5', 'publish'],
      ['--max-record-bytes', '0', 'publish'],
      ['--max-record-bytes', '8MiB', 'publish'],
    ] as const
  ).map(([flag, value]): BadInputCase => ({
    area: 'flag / env',
    input: `\`${flag} ${value}\``,
    does: 'usage error naming the flag and value, nothing sent',
    exit: 2,
    says: [new RegExp(`${flag}`), new RegExp(value.replace('.', '\\.'))],
    run: (ctx) =>
      cli(['-b', testBrokers(), 'publish', '--topic', ctx.topic, flag, value, '--dry-run'], {}, ''),
  })),
  {
    area: 'flag / env',
    input: '`SYNCCTL_BATCH_SIZE=lots`',
    does: 'usage error naming the variable',
    exit: 2,
    says: [/SYNCCTL_BATCH_SIZE/, /lots/],
    run: (ctx) =>
      cli(
        ['-b', testBrokers(), 'publish', '--topic', ctx.topic, '--dry-run'],
        { SYNCCTL_BATCH_SIZE: 'lots' },
        '',
      ),
  },
  {
    area: 'flag / env',
    input: '`--crm-page-size 0`',
    does: 'usage error naming the flag, no request made',
    exit: 2,
    says: [/--crm-page-size/],
    run: () => fetchCrm(['--crm-page-size', '0']),
  },
  {
    area: 'flag / env',
    input: '`SYNCCTL_MAX_PAGES=all`',
    does: 'usage error naming the variable, no request made',
    exit: 2,
    says: [/SYNCCTL_MAX_PAGES/, /all/],
    run: () => fetchCrm([], { SYNCCTL_MAX_PAGES: 'all' }),
  },
  {
    area: 'flag / env',
    input: '`--crm-max-response-bytes 0`',
    does: 'usage error naming the flag, no request made',
    exit: 2,
    says: [/--crm-max-response-bytes/],
    run: () => fetchCrm(['--crm-max-response-bytes', '0']),
  },
  {
    area: 'flag / env',
    input: '`SYNCCTL_CRM_TIMEOUT=-1`',
    does: 'usage error naming the variable',
    exit: 2,
    says: [/SYNCCTL_CRM_TIMEOUT/],
    run: () => fetchCrm([], { SYNCCTL_CRM_TIMEOUT: '-1' }),
  },
  {
    area: 'flag / env',
    input: '`--connect-timeout soon`',
    does: 'usage error naming the flag',
    exit: 2,
    says: [/--connect-timeout/, /soon/],
    run: () => cli(['--connect-timeout', 'soon', 'config', 'list']),
  },
  {
    area: 'flag / env',
    input: '`--since` later than `--until`',
    does: 'usage error naming both, no request made',
    exit: 2,
    says: [/--since/, /--until/],
    run: () => fetchCrm(['--since', '2026-02-01', '--until', '2026-01-01', '--out', '/dev/null']),
  },
  {
    area: 'flag / env',
    input: '`--since yesterday-ish` (not a date)',
    does: 'usage error naming the flag and value',
    exit: 2,
    says: [/--since/, /yesterday-ish/],
    run: () => fetchCrm(['--since', 'yesterday-ish', '--out', '/dev/null']),
  },
  {
    area: 'flag / env',
    input: '`--window 0`',
    does: 'usage error naming the flag',
    exit: 2,
    says: [/--window/],
    run: () =>
      fetchCrm(['--since', '2026-01-01', '--until', '2026-01-02', '--window', '0', '--out', '/dev/null']),
  },
  {
    area: 'flag / env',
    input: '`--concurrency -1`',
    does: 'usage error naming the flag',
    exit: 2,
    says: [/--concurrency/],
    run: () => fetchCrm(['--since', '2026-01-01', '--concurrency', '-1', '--out', '/dev/null']),
  },
  {
    area: 'flag / env',
    input: '`--crm-pagination sideways` (unknown style)',
    does: 'usage error listing the known styles',
    exit: 2,
    says: [/--crm-pagination/, /sideways/, /cursor/],
    run: () => fetchCrm(['--crm-pagination', 'sideways', '--out', '/dev/null']),
  },
  {
    area: 'flag / env',
    input: '`--source erp`',
    does: 'usage error listing crm and inventory',
    exit: 2,
    says: [/--source/, /erp/, /crm/],
    run: () => cli(['fetch', '--source', 'erp']),
  },
  {
    area: 'flag / env',
    input: '`--log-level loud`',
    does: 'usage error listing the levels',
    exit: 2,
    says: [/--log-level/, /loud/],
    run: () => cli(['--log-level', 'loud', 'config', 'list']),
  },
  {
    area: 'flag / env',
    input: '`SYNCCTL_LOG_LEVEL=loud`',
    does: 'usage error naming the variable',
    exit: 2,
    says: [/SYNCCTL_LOG_LEVEL/, /loud/],
    run: () => cli(['config', 'list'], { SYNCCTL_LOG_LEVEL: 'loud' }),
  },
  {
    area: 'flag / env',
    input: '`-o xml`',
    does: 'usage error listing the formats',
    exit: 2,
    says: [/--output|-o/, /xml/],
    run: () => cli(['-o', 'xml', 'config', 'list']),
  },
  {
    area: 'flag / env',
    input: '`--log-format yaml`',
    does: 'usage error listing the formats',
    exit: 2,
    says: [/--log-format/, /yaml/],
    run: () => cli(['--log-format', 'yaml', 'config', 'list']),
  },
  {
    area: 'flag / env',
    input: 'an unknown flag (`--colour`)',
    does: 'usage error naming the flag',
    exit: 2,
    says: [/--colour/],
    run: () => cli(['config', 'list', '--colour']),
  },
];

const statePaths: BadInputCase[] = [
  {
    area: 'state path',
    input: '`--state` in a directory that does not exist yet',
    does: 'creates the directories and runs',
    exit: 0,
    says: [],
    run: (ctx) => exportWithState(ctx, join(ctx.dir, 'no-such-dir', 'deeper', 'state.db')),
    kept: (ctx) => expect(existsSync(join(ctx.dir, 'no-such-dir', 'deeper', 'state.db'))).toBe(true),
  },
  {
    area: 'state path',
    input: '`--state` in a directory syncctl may not write (/sys)',
    does: 'config error naming the path and the reason',
    exit: 2,
    says: [/\/sys\/kernel\/syncctl\.db/, /permission denied/],
    run: (ctx) => exportWithState(ctx, '/sys/kernel/syncctl.db'),
  },
  {
    area: 'state path',
    input: '`--state` below a plain file',
    does: 'config error naming the file in the way',
    exit: 2,
    says: [/plain-file/],
    run: (ctx) => {
      const path = file(ctx, 'plain-file');
      writeFileSync(path, 'x');
      return exportWithState(ctx, join(path, 'state.db'));
    },
  },
  {
    area: 'state path',
    input: '`--state` a file that is not a database',
    does: 'config error: the path is not a SQLite database',
    exit: 2,
    says: [/not-a-db\.txt is not a SQLite database/],
    run: (ctx) => {
      const path = file(ctx, 'not-a-db.txt');
      writeFileSync(path, 'hello, I am a text file\n'.repeat(200));
      return exportWithState(ctx, path);
    },
  },
  {
    area: 'state path',
    input: '`--state` under /proc',
    does: 'config error naming the directory, at once (no retry loop)',
    exit: 2,
    says: [/cannot create the directory \/proc\/syncctl/],
    run: (ctx) => exportWithState(ctx, '/proc/syncctl/state.db'),
  },
  {
    area: 'state path',
    input: '`--state` a directory',
    does: 'config error: a directory, not a SQLite file',
    exit: 2,
    says: [/a-directory is a directory/],
    run: (ctx) => {
      const path = file(ctx, 'a-directory');
      mkdirSync(path);
      return exportWithState(ctx, path);
    },
  },
  {
    area: 'state path',
    input: '`--state postgres://…` at a port nobody listens on',
    does: 'temporary failure naming host and port',
    exit: 75,
    says: [/cannot reach the PostgreSQL state store at 127\.0\.0\.1:1\b/],
    run: (ctx) => exportWithState(ctx, 'postgres://postgres@127.0.0.1:1/test'),
  },
  {
    area: 'state path',
    input: '`--state mysql://…` (a URL of another database)',
    does: 'config error naming the scheme, password masked',
    exit: 2,
    says: [/unsupported state store scheme "mysql:"/],
    run: (ctx) => exportWithState(ctx, 'mysql://u:pw-secret@localhost/x'),
  },
];

export const FILE_CASES: BadInputCase[] = [...ndjson, ...flags, ...statePaths];
