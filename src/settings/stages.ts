import { defineSettings } from './define.js';

/** Flags every command takes (declared once on the program). */
export const GLOBAL_SETTINGS = defineSettings({
  brokers: {
    type: 'string',
    short: '-b',
    arg: '<list>',
    default: '127.0.0.1:9092',
    nonEmpty: true,
    description: 'Kafka bootstrap brokers, comma-separated',
  },
  connectTimeout: {
    type: 'integer',
    arg: '<ms>',
    min: 1,
    default: 5_000,
    description: 'how long connecting to Kafka may take before the broker counts as unreachable (exit 75)',
  },
  json: { type: 'boolean', default: false, description: 'print results as JSON on stdout' },
  output: {
    type: 'string',
    short: '-o',
    arg: '<format>',
    choices: ['table', 'plain', 'json'],
    defaultText: 'table on a terminal, plain otherwise',
    description: 'results as boxed tables, plain tab-separated rows (one per line), or JSON (same as --json)',
  },
  headers: {
    type: 'boolean',
    default: true,
    description: 'print the header row of plain tables; --no-headers leaves it out',
  },

  quiet: { type: 'boolean', short: '-q', default: false, description: 'print only errors' },
  verbose: { type: 'boolean', short: '-v', default: false, description: 'print debug diagnostics on stderr' },
  logFormat: {
    type: 'string',
    arg: '<format>',
    choices: ['human', 'json'],
    default: 'human',
    description: 'diagnostics on stderr as human lines or as JSON lines (pino) for a log shipper',
  },
  logLevel: {
    type: 'string',
    arg: '<level>',
    choices: ['error', 'warn', 'info', 'debug'],
    defaultText: 'info (error with --quiet, debug with --verbose)',
    description: 'least severe diagnostics shown',
  },
  logFile: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    description: 'also append diagnostics to this file as JSON lines',
  },
  state: {
    type: 'string',
    arg: '<path>',
    defaultText: '<state dir>/state.db',
    nonEmpty: true,
    description: 'state store: SQLite file path or postgres:// URL',
  },
});

/** The one table of topic names: topics ensure, fetch --publish, publish and consume read it. */
export const TOPIC_SETTINGS = defineSettings({
  customerTopic: {
    type: 'string',
    arg: '<name>',
    default: 'customer_data',
    nonEmpty: true,
    description: 'topic of customer envelopes',
  },
  productTopic: {
    type: 'string',
    arg: '<name>',
    default: 'inventory_data',
    nonEmpty: true,
    description: 'topic of product envelopes',
  },
  dlqTopic: {
    type: 'string',
    arg: '<name>',
    default: 'syncctl_dlq',
    nonEmpty: true,
    description: 'dead-letter topic',
  },
});

/** The default topic names, for code that has no settings at hand (library callers, tests). */
export const DEFAULT_TOPICS = {
  customers: TOPIC_SETTINGS.customerTopic.default,
  products: TOPIC_SETTINGS.productTopic.default,
  deadLetter: TOPIC_SETTINGS.dlqTopic.default,
} as const;

export const TOPICS_ENSURE_SETTINGS = defineSettings({
  partitions: {
    type: 'integer',
    short: '-p',
    min: 1,
    default: 6,
    description: 'partitions of the data topics',
  },
  dlqPartitions: { type: 'integer', min: 1, default: 1, description: 'partitions of the dead-letter topic' },
  replicationFactor: { type: 'integer', short: '-r', min: 1, default: 1, description: 'replication factor' },
});

export const DOCTOR_SETTINGS = defineSettings({
  checkTimeout: {
    type: 'integer',
    arg: '<seconds>',
    min: 1,
    default: 15,
    description: 'doctor: how long each check may take before it fails as "no answer"',
  },
});

export const FETCH_SETTINGS = defineSettings({
  source: {
    type: 'string',
    short: '-s',
    arg: '<name>',
    choices: ['crm', 'inventory'],
    description: 'the source to fetch: crm or inventory (required)',
  },
  out: {
    type: 'string',
    short: '-o',
    arg: '<file>',
    defaultText: 'stdout',
    description: 'write NDJSON to this file',
  },
  publish: {
    type: 'boolean',
    default: false,
    description: "publish to the source's topic instead of writing NDJSON",
  },
  topic: {
    type: 'string',
    short: '-t',
    arg: '<topic>',
    nonEmpty: true,
    defaultText: '--customer-topic / --product-topic',
    description: 'topic for --publish',
  },
  full: {
    type: 'boolean',
    default: false,
    description: 'ignore the checkpoint and fetch everything (moves the checkpoint when it completes)',
  },
  since: {
    type: 'string',
    arg: '<time>',
    description: 'backfill from this ISO date/time (inclusive, UTC unless an offset is given)',
  },
  until: {
    type: 'string',
    arg: '<time>',
    defaultText: 'when the backfill starts',
    description: 'backfill up to this ISO date/time (exclusive)',
  },
  window: {
    type: 'string',
    arg: '<size>',
    default: '1d',
    description: 'backfill window: a duration (30m, 6h, 1d, 1w) or a number of windows',
  },
  concurrency: { type: 'integer', min: 1, default: 4, description: 'backfill windows fetched at once' },
  resume: {
    type: 'boolean',
    default: false,
    description: 'only continue interrupted work (a killed run or backfill); start nothing new',
  },
  restart: {
    type: 'boolean',
    default: false,
    description: 'discard interrupted progress (and finished windows of this backfill range) first',
  },
  rejects: {
    type: 'string',
    arg: '<file>',
    defaultText: '<out>.rejects.ndjson or ./syncctl-fetch-<source>-rejects.ndjson',
    description: 'where rejected records go (NDJSON)',
  },
});

export const PUBLISH_SETTINGS = defineSettings({
  topic: {
    type: 'string',
    short: '-t',
    arg: '<topic>',
    nonEmpty: true,
    description: 'topic to publish to (customer_data, inventory_data, …); required',
  },
  in: {
    type: 'string',
    short: '-i',
    arg: '<file>',
    default: '-',
    description: 'NDJSON input file, or - for stdin',
  },
  rejects: {
    type: 'string',
    arg: '<file>',
    defaultText: '<in>.rejects.ndjson, or ./syncctl-rejects.ndjson for stdin',
    description: 'where malformed lines go (NDJSON)',
  },
  dryRun: { type: 'boolean', default: false, description: 'validate every line without sending anything' },
  batchSize: { type: 'integer', min: 1, default: 2000, description: 'records per producer request' },
});

export const CONSUME_SETTINGS = defineSettings({
  once: {
    type: 'boolean',
    default: false,
    description: 'drain to the end offsets seen at start, commit, print the summary and exit (for cron)',
  },
  group: {
    type: 'string',
    short: '-g',
    arg: '<id>',
    default: 'syncctl',
    nonEmpty: true,
    description: 'consumer group',
  },
  batchSize: { type: 'integer', min: 1, default: 250, description: 'unified records per Analytics delivery' },
  productRefPath: {
    type: 'string',
    arg: '<path>',
    default: 'productIds',
    nonEmpty: true,
    description: 'where customer records list product ids, e.g. orders[].productId',
  },
  idleTimeout: {
    type: 'integer',
    arg: '<seconds>',
    min: 1,
    default: 60,
    description: '--once: give up (exit 75) after this long without progress before the end offsets',
  },
  shutdownTimeout: {
    type: 'integer',
    arg: '<seconds>',
    min: 1,
    default: 30,
    description:
      'on SIGINT/SIGTERM, wait this long for the batch in flight and the delivery of what was read',
  },
  sessionTimeout: {
    type: 'integer',
    arg: '<seconds>',
    min: 6,
    default: 30,
    description: "Kafka session timeout: how soon the group gives a dead instance's partitions to others",
  },
  maxDeliveryDelay: {
    type: 'integer',
    arg: '<seconds>',
    min: 0,
    default: 5,
    description:
      'deliver merged changes at most this long after reading them, so a customer whose products arrive a few batches later is sent once; 0 delivers after every Kafka batch',
  },
});

export const SANDBOX_SETTINGS = defineSettings({
  dir: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    defaultText: '$SYNCCTL_SANDBOX_DIR or <state dir>/sandbox',
    description: 'sandbox directory',
  },
  port: {
    type: 'integer',
    min: 1,
    max: 65_535,
    defaultText: 'a free one',
    description: 'Kafka port (sandbox up)',
  },
  brokerCount: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    max: 5,
    default: 1,
    description:
      'Kafka brokers to run, each also a KRaft controller; topics get one copy per broker, and from 3 brokers min.insync.replicas=2 (sandbox up; `sandbox up --brokers N` says the same)',
  },
  secure: {
    type: 'boolean',
    default: false,
    description:
      'sandbox up: Kafka over SASL_SSL (SCRAM-SHA-512, PLAIN) with a private CA, plus an mTLS listener; `sandbox env` prints the client settings',
  },
});

export const REPLAY_DLQ_SETTINGS = defineSettings({
  errorClass: {
    type: 'string',
    arg: '<name>',
    description: 'only letters with this error class (e.g. InvalidEnvelopeError, SinkPermanentError)',
  },
  error: {
    type: 'string',
    arg: '<text>',
    description: 'only letters whose error code or message contains this text',
  },
  sourceTopic: { type: 'string', arg: '<topic>', description: 'only letters that came from this topic' },
  key: {
    type: 'string',
    arg: '<key>',
    description: 'only letters with this source key (customer or product id)',
  },
  since: {
    type: 'string',
    arg: '<time>',
    description: 'only letters dead-lettered at or after this ISO date/time',
  },
  until: {
    type: 'string',
    arg: '<time>',
    description: 'only letters dead-lettered before this ISO date/time',
  },
  minAttempts: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    description: 'only letters with at least this many attempts',
  },
  limit: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    description:
      'at most this many letters (after the filters; --replay does not count letters replayed before)',
  },
  offset: {
    type: 'string',
    arg: '<ranges>',
    description:
      'only these dead-letter offsets: comma-separated N, A-B (inclusive), A- or -B, each optionally P: for one partition (e.g. 0:10-20,1:5)',
  },
  count: {
    type: 'boolean',
    default: false,
    description: 'print a per-error-class summary instead of the letters',
  },
  show: {
    type: 'string',
    arg: '<offset>',
    description: 'print the letter at this dead-letter offset whole (headers and value)',
  },
  partition: {
    type: 'integer',
    arg: '<n>',
    min: 0,
    default: 0,
    description: 'dead-letter partition of --show',
  },
  replay: {
    type: 'boolean',
    default: false,
    description: 'replay the selected letters (once: letters replayed before are skipped)',
  },
  dryRun: {
    type: 'boolean',
    default: false,
    description: 'show what --replay would do, and where, without changing anything',
  },
  fromFile: {
    type: 'string',
    arg: '<file>',
    description:
      'replay corrected values: NDJSON lines {"partition", "offset", "value"} (the --json listing, edited); only the letters named are replayed',
  },
  deliver: {
    type: 'boolean',
    default: false,
    description: 're-marked records refused by Analytics are delivered now instead of by the next consume',
  },
  edit: {
    type: 'boolean',
    default: false,
    description:
      'open the selected letters in $VISUAL/$EDITOR as --from-file NDJSON: correct values, delete lines not to replay',
  },
});

export const RUN_SETTINGS = defineSettings({
  job: {
    type: 'string',
    arg: '<name>',
    default: 'default',
    nonEmpty: true,
    description: 'job name: the lock run:<job> and the run history are per job',
  },
  steps: {
    type: 'string',
    arg: '<list>',
    default: 'fetch,consume',
    nonEmpty: true,
    description:
      'the steps to run, comma-separated, in order: fetch (both sources, published), consume (--once), export (export-csv --upload)',
  },
  metricsFile: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    description: 'after the run, write its metrics here (Prometheus node_exporter textfile format)',
  },
});

export const STATUS_SETTINGS = defineSettings({
  runs: {
    type: 'integer',
    arg: '<n>',
    min: 1,
    default: 10,
    description: 'how many of the latest runs to show',
  },
});
