import { defineSettings } from './define.js';

/**
 * How every command reaches Kafka securely (declared once on the program, next to --brokers):
 * connectors/kafka-security.ts turns these into kafkajs's `ssl` and `sasl` options.
 */
export const KAFKA_SETTINGS = defineSettings({
  kafkaSecurityProtocol: {
    type: 'string',
    arg: '<protocol>',
    choices: ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'],
    default: 'PLAINTEXT',
    description: "the brokers' listener protocol, as in Kafka's security.protocol",
  },
  kafkaSaslMechanism: {
    type: 'string',
    arg: '<mechanism>',
    choices: ['plain', 'scram-sha-256', 'scram-sha-512'],
    default: 'scram-sha-512',
    description: 'SASL mechanism for SASL_SSL / SASL_PLAINTEXT',
  },
  kafkaSaslUsername: {
    type: 'string',
    arg: '<user>',
    nonEmpty: true,
    description: 'SASL user name (SASL_SSL / SASL_PLAINTEXT)',
  },
  kafkaSaslPassword: {
    type: 'string',
    arg: '<password>',
    nonEmpty: true,
    secret: true,
    description: 'SASL password (prefer the variable: flags show in ps)',
  },
  kafkaCaFile: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    defaultText: "the system's trusted CAs",
    description:
      "PEM file of the CA(s) that signed the brokers' certificates (SSL / SASL_SSL); trusted instead of the system's, as Kafka's truststore is",
  },
  kafkaCertFile: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    description: 'PEM client certificate for brokers that require one (mTLS; with --kafka-key-file)',
  },
  kafkaKeyFile: {
    type: 'string',
    arg: '<path>',
    nonEmpty: true,
    description: 'PEM private key of --kafka-cert-file (unencrypted)',
  },
});
