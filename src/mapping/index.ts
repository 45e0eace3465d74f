export * from './expression.js';
export * from './load.js';
export * from './mapping.js';
export * from './path.js';
export * from './sources.js';
export * from './values.js';
