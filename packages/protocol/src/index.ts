export * from './limits.js';
export * from './errors.js';
export * from './schemas.js';
export * from './events.js';
