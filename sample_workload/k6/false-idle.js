// false-idle: game records at ~40 per second (RATE). With WRITE_MODE=single, POOL_SIZE=2,
// POOL_MAX_OVERFLOW=0 and RECORD_HOLD_MS=50 the pool's capacity is ~2 / 50 ms = 40 per second,
// so requests queue for a connection while the CPU stays low. Fix: WRITE_MODE=batch or POOL_SIZE=20.
import { arrival, num, p95, record } from './lib.js';

export { record };

export const options = {
  scenarios: {
    records: arrival('record', num('RATE', 40), num('PRE_VUS', 20), num('MAX_VUS', 200), { endpoint: 'records' }),
  },
  thresholds: p95('records', 200),
};
