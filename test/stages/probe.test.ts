/** The probe's judgement of a page: which findings are warnings (exit 3) and which are notes. */
import { describe, expect, it } from 'vitest';
import { assessPage, type ProbeMapped, type ProbeRecord } from '../../src/stages/probe.js';

const NOW = new Date('2025-06-01T12:00:00Z');

function rec(index: number, mapped: Partial<ProbeMapped>): ProbeRecord {
  return {
    index,
    raw: {},
    mapped: {
      id: `C${index}`,
      updatedAt: `2025-01-0${index}T00:00:00.000Z`,
      version: 1,
      deleted: false,
      data: {},
      ...mapped,
    },
  };
}

const codes = (findings: { code: string }[]) => findings.map((f) => f.code).sort();

describe('assessPage', () => {
  it('warns about an empty page', () => {
    const { warnings, notes } = assessPage('crm', [], NOW);
    expect(codes(warnings)).toEqual(['empty-page']);
    expect(notes).toEqual([]);
  });

  it('has nothing to say about a sound page with a delete and split references', () => {
    const page = [rec(1, { productIds: ['P1', 'P2'] }), rec(2, { deleted: true, productIds: [] })];
    expect(assessPage('crm', page, NOW)).toEqual({ warnings: [], notes: [] });
  });

  it('notes what is often fine: no delete, pages not in time order, no references mapped', () => {
    const page = [rec(2, {}), rec(1, {})];
    const { warnings, notes } = assessPage('crm', page, NOW);
    expect(warnings).toEqual([]);
    expect(codes(notes)).toEqual(['no-product-refs', 'none-deleted', 'unordered']);
    // Products have no references to map.
    expect(codes(assessPage('inventory', page, NOW).notes)).toEqual(['none-deleted', 'unordered']);
  });

  it('tells a delimited reference list by ; , or |', () => {
    for (const joined of ['P1;P2', 'P1,P2', 'P1|P2']) {
      const { warnings } = assessPage(
        'crm',
        [rec(1, { productIds: [joined] }), rec(2, { deleted: true })],
        NOW,
      );
      expect(codes(warnings)).toEqual(['delimited-refs']);
    }
  });

  it('counts a reject by the field that failed', () => {
    const reject = (index: number, field: string): ProbeRecord => ({
      index,
      raw: {},
      reject: { reason: `record has no ${field}`, mapping: { field, expression: field, error: 'x' } },
    });
    const { warnings } = assessPage(
      'crm',
      [reject(1, 'id'), reject(2, 'updatedAt'), reject(3, 'deleted'), rec(4, { deleted: true }), rec(5, {})],
      NOW,
    );
    expect(codes(warnings)).toEqual(['bad-timestamp', 'missing-id', 'rejected']);
  });

  it('allows a few minutes of clock skew before calling a time future', () => {
    const soon = new Date(NOW.getTime() + 60_000).toISOString();
    const later = new Date(NOW.getTime() + 3_600_000).toISOString();
    const page = (t: string) => [rec(1, { updatedAt: t }), rec(2, { deleted: true })];
    expect(codes(assessPage('crm', page(soon), NOW).warnings)).toEqual([]);
    expect(codes(assessPage('crm', page(later), NOW).warnings)).toEqual(['future-timestamp']);
  });
});
