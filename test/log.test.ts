import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { addSecret } from '../src/redact.js';
import { tempDir } from './helpers/temp.js';

function capture() {
  const out: string[] = [];
  return { out, write: (s: string) => out.push(s) };
}

describe('logger', () => {
  it('human format keeps the syncctl: lines and gates by level', () => {
    const { out, write } = capture();
    const logger = createLogger('warn', write);
    logger.error('e');
    logger.warn('w');
    logger.info('i');
    logger.debug('d');
    expect(out).toEqual(['syncctl: error: e\n', 'syncctl: warning: w\n']);
  });

  it('json format writes one parseable line per event with bindings, fields and the level name', () => {
    const { out, write } = capture();
    const logger = createLogger('info', write, { format: 'json', bindings: { runId: 'r1', stage: 'fetch' } });
    logger.info('page done', { records: 3 });
    logger.child({ source: 'crm' }).warn('slow');
    logger.debug('hidden');
    const lines = out
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'info',
      runId: 'r1',
      stage: 'fetch',
      records: 3,
      msg: 'page done',
    });
    expect(lines[1]).toMatchObject({ level: 'warn', source: 'crm', runId: 'r1', msg: 'slow' });
    expect(Number.isNaN(Date.parse(String(lines[0]?.time)))).toBe(false);
  });

  it('redacts configured secrets and URL passwords in messages, fields and bindings', () => {
    addSecret('log-unit-secret-42');
    const { out, write } = capture();
    const logger = createLogger('verbose', write, {
      format: 'json',
      bindings: { url: 'http://u:pw1234@h/' },
    });
    logger.child({ token: 'log-unit-secret-42' }).debug('sent log-unit-secret-42', {
      nested: { header: 'Bearer log-unit-secret-42' },
      error: new Error('failed with log-unit-secret-42'),
    });
    const text = out.join('');
    expect(text).not.toContain('log-unit-secret-42');
    expect(text).not.toContain('pw1234');
    expect(JSON.parse(text)).toMatchObject({ msg: 'sent ***', error: 'failed with ***' });
  });

  it('--log-file appends JSON lines while stderr stays human', () => {
    const { out, write } = capture();
    const file = join(tempDir('syncctl-log-'), 'sub', 'syncctl.log');
    const logger = createLogger('info', write, { file, bindings: { runId: 'r2' } });
    logger.info('one');
    logger.error('two', { code: 'E_X' });
    expect(out).toEqual(['syncctl: one\n', 'syncctl: error: two\n']);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.level, l.msg, l.runId])).toEqual([
      ['info', 'one', 'r2'],
      ['error', 'two', 'r2'],
    ]);
    expect(lines[1]?.code).toBe('E_X');
  });

  it('an unwritable --log-file is a usage error naming it', () => {
    expect(() => createLogger('info', () => {}, { file: '/proc/syncctl.log' })).toThrow(UsageError);
    expect(() => createLogger('info', () => {}, { file: '/proc/syncctl.log' })).toThrow(
      /--log-file \/proc\/syncctl.log/,
    );
  });
});
