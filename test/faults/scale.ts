/**
 * How big the fault suite runs: `FAULTS_SCALE=ci` (the default) keeps every scenario small enough
 * for the whole suite to fit CI's budget of a few minutes on 2 cores; `full` is issue 13's load
 * (50,000 customers, at least 20 consumer kills).
 */
export interface FaultScale {
  name: 'ci' | 'full';
  /** Customers and products of the consumer-kill scenario. */
  killCustomers: number;
  killProducts: number;
  /** SIGKILLs of `consume` (each followed by a rerun). */
  consumerKills: number;
  /** Customers of the other scenarios. */
  customers: number;
  products: number;
  /** SIGKILLs of the concurrent backfill. */
  fetcherKills: number;
  /** Customers and products of the 3-broker cluster scenarios (enough for a kill to land mid-publish). */
  clusterCustomers: number;
  clusterProducts: number;
  /** Customers and products of the multi-consumer scenario (enough for every membership change to land mid-run). */
  memberCustomers: number;
  memberProducts: number;
}

const SCALES: Record<FaultScale['name'], FaultScale> = {
  ci: {
    name: 'ci',
    killCustomers: 2_000,
    killProducts: 200,
    consumerKills: 3,
    customers: 600,
    products: 80,
    fetcherKills: 2,
    clusterCustomers: 6_000,
    clusterProducts: 400,
    memberCustomers: 1_500,
    memberProducts: 150,
  },
  full: {
    name: 'full',
    killCustomers: 50_000,
    killProducts: 2_000,
    consumerKills: 20,
    customers: 5_000,
    products: 500,
    fetcherKills: 6,
    clusterCustomers: 30_000,
    clusterProducts: 2_000,
    memberCustomers: 10_000,
    memberProducts: 1_000,
  },
};

export function faultScale(): FaultScale {
  const name = process.env.FAULTS_SCALE ?? 'ci';
  if (name !== 'ci' && name !== 'full') throw new Error(`FAULTS_SCALE must be ci or full, not ${name}`);
  return SCALES[name];
}
