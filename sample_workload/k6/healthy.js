// healthy: the everyday mix, 3 login + 50 records + 10 challenges + 10 report per second
// (RATE is the total, default 73, split in those proportions). Run the service with
// HEAVY_FRACTION=0 for a picture with no signature at all.
import { arrival, num, p95, login, record, challenges, report } from './lib.js';

export { login, record, challenges, report };

const RATE = num('RATE', 73);
const PRE = num('PRE_VUS', 10);
const MAX = num('MAX_VUS', 50);
const MIX = { login: 3 / 73, records: 50 / 73, challenges: 10 / 73, report: 10 / 73 };

export const options = {
  scenarios: {
    login: arrival('login', RATE * MIX.login, PRE, MAX, { endpoint: 'login' }),
    records: arrival('record', RATE * MIX.records, PRE, MAX, { endpoint: 'records' }),
    challenges: arrival('challenges', RATE * MIX.challenges, PRE, MAX, { endpoint: 'challenges' }),
    report: arrival('report', RATE * MIX.report, PRE, MAX, { endpoint: 'report' }),
  },
  thresholds: Object.assign({}, p95('login', 500), p95('records', 200), p95('challenges', 300), p95('report', 300)),
};
