// login-storm: logins at ~10 per second (RATE). At BCRYPT_COST=12 each check costs ~240 ms of
// CPU, 10 per second need 2.4 cores of a 2-core machine: CPU saturates, p95 climbs into
// seconds and k6 drops iterations once MAX_VUS are busy. Fix: BCRYPT_COST=10.
import { arrival, num, p95, login } from './lib.js';

export { login };

export const options = {
  scenarios: {
    login: arrival('login', num('RATE', 10), num('PRE_VUS', 10), num('MAX_VUS', 50), { endpoint: 'login' }),
  },
  thresholds: p95('login', 500),
};
