import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';
import { byText, chunks, placeholders, retryingTransaction } from './sql.js';

/**
 * The outbox (consume_dirty: customers whose unified record may have changed, with delivery claims
 * and leases) and the delivery ledger (consume_ledger: the last unified-record hash Analytics
 * acknowledged, or refused for good, per customer).
 *
 * A dirty mark is cleared only in the transaction that records the delivery (or dead letter) in the
 * ledger, so a killed drain leaves the customer dirty and the next drain delivers it.
 */

export interface Claim {
  customerId: string;
  gen: number;
}

export type Completion =
  | { customerId: string; gen: number; outcome: 'delivered'; hash: string; key: string; op: string }
  | { customerId: string; gen: number; outcome: 'dead-lettered'; hash: string }
  | { customerId: string; gen: number; outcome: 'skipped' };

export interface LedgerEntry {
  deliveredHash: string | null;
  deliveredOp: string | null;
  /** The hash last refused for good; drain does not resend it unless remarkForDelivery clears it. */
  deadHash: string | null;
}

/** This process's identity in claims: host/pid/random, so a restarted process never mistakes old claims for its own. */
export function newOwnerId(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

function ownerIsDeadHere(owner: string): boolean {
  const [host, pidText] = owner.split('/');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class Outbox {
  constructor(readonly db: Db) {}

  private async nextGen(tx: Db): Promise<number> {
    if (tx.kind === 'postgres') {
      const rows = await tx.query<{ g: string }>(`SELECT nextval('consume_gen_seq') AS g`);
      return Number(rows[0]?.g);
    }
    const rows = await tx.query<{ value: number }>(
      `UPDATE consume_counters SET value = value + 1 WHERE name = 'gen' RETURNING value`,
    );
    return Number(rows[0]?.value);
  }

  /**
   * Marks customers dirty with a new generation, inside the caller's transaction. A mark on a
   * customer already dirty moves its gen on (so a delivery in flight does not clear it) and keeps
   * its claim and its place in the queue (first_gen).
   */
  async markDirty(tx: Db, customerIds: string[]): Promise<{ gen: number; dirtied: number }> {
    const gen = await this.nextGen(tx);
    const now = new Date().toISOString();
    let dirtied = 0;
    // Sorted, so two instances marking overlapping sets lock rows in the same order.
    for (const part of chunks([...new Set(customerIds)].sort(byText))) {
      const { changes } = await tx.run(
        `INSERT INTO consume_dirty (customer_id, gen, first_gen, marked_at)
         VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')}
         ON CONFLICT (customer_id) DO UPDATE SET gen = excluded.gen, marked_at = excluded.marked_at`,
        part.flatMap((id) => [id, gen, gen, now]),
      );
      dirtied += changes;
    }
    return { gen, dirtied };
  }

  /**
   * Marks customers to be delivered again and clears their dead-letter mark, in one transaction, so
   * the next drain sends their current unified record even when it is the one Analytics refused.
   * The delivered hash stays: a customer whose current record Analytics already holds is skipped.
   * For a DLQ replay; `gen` is 0 when nothing was given.
   */
  async remarkForDelivery(customerIds: string[]): Promise<{ gen: number; dirtied: number }> {
    const ids = [...new Set(customerIds)].sort(byText);
    if (ids.length === 0) return { gen: 0, dirtied: 0 };
    return retryingTransaction(this.db, async (tx) => {
      for (const part of chunks(ids)) {
        await tx.run(
          `UPDATE consume_ledger SET dead_hash = NULL, dead_at = NULL
           WHERE customer_id IN (${placeholders(part.length)}) AND dead_hash IS NOT NULL`,
          part,
        );
      }
      return this.markDirty(tx, ids);
    });
  }

  /**
   * Claims up to `limit` dirty customers for delivery: unclaimed ones, ones whose lease ran out, and
   * this owner's own (left from an interrupted drain). PostgreSQL skips rows another instance is
   * claiming right now.
   */
  async claim(owner: string, limit: number, leaseMs: number): Promise<Claim[]> {
    const now = Date.now();
    const skipLocked = this.db.kind === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows = await retryingTransaction(this.db, (tx) =>
      tx.query<{ customer_id: string; gen: number | string }>(
        `UPDATE consume_dirty SET claimed_by = ?, claim_until = ?
         WHERE customer_id IN (
           SELECT customer_id FROM consume_dirty
           WHERE claimed_by IS NULL OR claimed_by = ? OR claim_until < ?
           ORDER BY first_gen, customer_id LIMIT ?${skipLocked})
         RETURNING customer_id, gen`,
        [owner, now + leaseMs, owner, now, limit],
      ),
    );
    return rows
      .map((r) => ({ customerId: r.customer_id, gen: Number(r.gen) }))
      .sort((a, b) => byText(a.customerId, b.customerId));
  }

  /** Keeps this owner's claims alive during a long delivery. */
  async renew(owner: string, leaseMs: number): Promise<void> {
    await this.db.run('UPDATE consume_dirty SET claim_until = ? WHERE claimed_by = ?', [
      Date.now() + leaseMs,
      owner,
    ]);
  }

  /** Gives this owner's claims back (after a failed delivery), so any instance can take them at once. */
  async release(owner: string): Promise<void> {
    await this.db.run('UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?', [
      owner,
    ]);
  }

  /**
   * Frees claims held by processes on this host that no longer exist (a SIGKILLed consumer), so a
   * rerun does not wait for their leases to run out. Claims from other hosts wait for the lease.
   */
  async releaseDeadOwners(owner: string): Promise<number> {
    const rows = await this.db.query<{ claimed_by: string }>(
      'SELECT DISTINCT claimed_by FROM consume_dirty WHERE claimed_by IS NOT NULL AND claimed_by <> ? AND claim_until >= ?',
      [owner, Date.now()],
    );
    let released = 0;
    for (const { claimed_by: other } of rows) {
      if (!ownerIsDeadHere(other)) continue;
      const { changes } = await this.db.run(
        'UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?',
        [other],
      );
      released += changes;
    }
    return released;
  }

  /**
   * Records what happened to claimed customers and clears their dirty marks, in one transaction.
   * A customer re-marked since it was claimed (its gen moved on) stays dirty and is released, so
   * the newer change is delivered too; a dead letter is then not recorded in the ledger either, so a
   * re-mark for replay is not undone by a refusal of the delivery that was in flight.
   */
  async complete(owner: string, completions: Completion[]): Promise<void> {
    if (completions.length === 0) return;
    const now = new Date().toISOString();
    const sorted = [...completions].sort((a, b) => byText(a.customerId, b.customerId));
    await retryingTransaction(this.db, async (tx) => {
      const cleared = new Set<string>();
      for (const part of chunks(sorted, 200)) {
        const rows = await tx.query<{ customer_id: string }>(
          `DELETE FROM consume_dirty WHERE ${part.map(() => '(customer_id = ? AND gen = ?)').join(' OR ')}
           RETURNING customer_id`,
          part.flatMap((c) => [c.customerId, c.gen]),
        );
        for (const r of rows) cleared.add(r.customer_id);
        const remarked = part.filter((c) => !cleared.has(c.customerId)).map((c) => c.customerId);
        if (remarked.length > 0) {
          await tx.run(
            `UPDATE consume_dirty SET claimed_by = NULL, claim_until = NULL
             WHERE claimed_by = ? AND customer_id IN (${placeholders(remarked.length)})`,
            [owner, ...remarked],
          );
        }
      }
      // Analytics holds what it acknowledged whether or not the customer changed since.
      const delivered = sorted.filter(
        (c): c is Extract<Completion, { outcome: 'delivered' }> => c.outcome === 'delivered',
      );
      for (const part of chunks(delivered, 200)) {
        await tx.run(
          `INSERT INTO consume_ledger (customer_id, delivered_hash, delivered_key, delivered_op, delivered_at)
           VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
           ON CONFLICT (customer_id) DO UPDATE SET delivered_hash = excluded.delivered_hash,
             delivered_key = excluded.delivered_key, delivered_op = excluded.delivered_op,
             delivered_at = excluded.delivered_at`,
          part.flatMap((c) => [c.customerId, c.hash, c.key, c.op, now]),
        );
      }
      const dead = sorted.filter(
        (c): c is Extract<Completion, { outcome: 'dead-lettered' }> =>
          c.outcome === 'dead-lettered' && cleared.has(c.customerId),
      );
      for (const part of chunks(dead, 200)) {
        await tx.run(
          `INSERT INTO consume_ledger (customer_id, dead_hash, dead_at)
           VALUES ${part.map(() => '(?, ?, ?)').join(', ')}
           ON CONFLICT (customer_id) DO UPDATE SET dead_hash = excluded.dead_hash, dead_at = excluded.dead_at`,
          part.flatMap((c) => [c.customerId, c.hash, now]),
        );
      }
    });
  }

  /** Dirty customers marked at or before `gen` (by anyone) that are not delivered yet. */
  async pendingUpTo(gen: number): Promise<number> {
    const rows = await this.db.query<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM consume_dirty WHERE first_gen <= ?',
      [gen],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The newest outbox generation still marked (0 when none). */
  async maxGen(): Promise<number> {
    const rows = await this.db.query<{ g: number | string | null }>(
      'SELECT MAX(gen) AS g FROM consume_dirty',
    );
    return Number(rows[0]?.g ?? 0);
  }

  async pendingTotal(): Promise<number> {
    const rows = await this.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM consume_dirty');
    return Number(rows[0]?.n ?? 0);
  }

  async ledger(customerIds: string[]): Promise<Map<string, LedgerEntry>> {
    const out = new Map<string, LedgerEntry>();
    for (const part of chunks(customerIds)) {
      const rows = await this.db.query<{
        customer_id: string;
        delivered_hash: string | null;
        delivered_op: string | null;
        dead_hash: string | null;
      }>(
        `SELECT customer_id, delivered_hash, delivered_op, dead_hash FROM consume_ledger
         WHERE customer_id IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) {
        out.set(r.customer_id, {
          deliveredHash: r.delivered_hash,
          deliveredOp: r.delivered_op,
          deadHash: r.dead_hash,
        });
      }
    }
    return out;
  }

  async counts(): Promise<{ dirty: number; delivered: number }> {
    const one = async (sql: string) => Number((await this.db.query<{ n: number | string }>(sql))[0]?.n ?? 0);
    return {
      dirty: await one('SELECT COUNT(*) AS n FROM consume_dirty'),
      delivered: await one('SELECT COUNT(*) AS n FROM consume_ledger WHERE delivered_hash IS NOT NULL'),
    };
  }
}
