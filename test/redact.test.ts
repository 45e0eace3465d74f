import { describe, expect, it } from 'vitest';
import { addSecret, redact } from '../src/redact.js';

describe('redact', () => {
  it('masks bearer tokens, key=value secrets and URL passwords', () => {
    expect(redact('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer ***');
    expect(redact('sent bearer eyJhbGciOiJIUzI1NiJ9 to crm')).toBe('sent bearer *** to crm');
    expect(redact('token=s3cr3t&page=2')).toBe('token=***&page=2');
    expect(redact('{"password": "hunter22", "user": "bob"}')).toBe('{"password": "***", "user": "bob"}');
    expect(redact('api_key: k-123 next')).toBe('api_key: *** next');
    expect(redact('postgres://app:pw%40x@db:5432/sync')).toBe('postgres://app:***@db:5432/sync');
  });

  it('masks every occurrence of a registered secret value, whatever surrounds it', () => {
    addSecret('zq-unit-secret-1');
    expect(redact('a zq-unit-secret-1 b "zq-unit-secret-1"')).toBe('a *** b "***"');
  });

  it('ignores values too short to be told from ordinary words', () => {
    addSecret('ab');
    expect(redact('tab stab')).toBe('tab stab');
  });

  it('leaves a hint naming where to set a secret readable', () => {
    expect(
      redact('check the token: --analytics-token, SYNCCTL_ANALYTICS_TOKEN or profile key analyticsToken'),
    ).toBe('check the token: --analytics-token, SYNCCTL_ANALYTICS_TOKEN or profile key analyticsToken');
    expect(redact('password: -x9secret')).toBe('password: ***');
  });

  it('leaves text without secrets unchanged', () => {
    const text = 'fetched 100 records from https://crm.example.com/api/customers?page=3';
    expect(redact(text)).toBe(text);
  });
});
