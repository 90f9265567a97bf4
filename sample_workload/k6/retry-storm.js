// retry-storm: reports at ~20 per second (RATE). With STATEMENT_TIMEOUT_MS=100,
// HEAVY_FRACTION=0.3 and RETRY_POLICY=immediate every heavy request is tried 6 times:
// ~2.5 database queries per request and 504 timeouts. Fix: RETRY_POLICY=backoff (~1.1).
import { arrival, num, p95, report } from './lib.js';

export { report };

export const options = {
  scenarios: {
    report: arrival('report', num('RATE', 20), num('PRE_VUS', 20), num('MAX_VUS', 100), { endpoint: 'report' }),
  },
  thresholds: p95('report', 300),
};
