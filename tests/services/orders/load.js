// k6 load for the orders service. Constant arrival rate: requests start on a fixed schedule
// whatever the latency, so a slow service shows as latency and dropped iterations, not as a
// politely lower rate (no coordinated omission).
//
// env: BASE_URL (http://127.0.0.1:8080), DURATION (a k6 duration, 15s), SCENARIO, RATE (per
// second, may be fractional; each scenario has its own default), PRE_VUS, MAX_VUS, GRACEFUL_STOP.
//   SCENARIO=login   POST /login   (login storm: PBKDF2_ITER=600000 saturates both cores)
//   SCENARIO=orders  POST /orders  (false idle: POOL_SIZE=2 at HOLD_MS=50 serves ~40/s)
//   SCENARIO=report  GET  /report  (retry storm: RETRY_POLICY=immediate, 30 % of users time out)
//   SCENARIO=mixed   all three at light rates (a healthy baseline with the fixed settings)
import http from 'k6/http';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const DURATION = __ENV.DURATION || '15s';
const SCENARIO = __ENV.SCENARIO || 'login';
const USERS = 5000;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

function num(name, dflt) {
  const v = __ENV[name];
  return v === undefined || v === '' ? dflt : Number(v);
}

// Rates are expressed per 10 s so that fractional rates stay exact.
function arrival(exec, ratePerSecond, endpoint) {
  const preVUs = num('PRE_VUS', 50);
  return {
    executor: 'constant-arrival-rate',
    exec: exec,
    rate: Math.max(1, Math.round(ratePerSecond * 10)),
    timeUnit: '10s',
    duration: DURATION,
    preAllocatedVUs: preVUs,
    maxVUs: Math.max(num('MAX_VUS', 300), preVUs),
    // Requests still queued at the end get this long to finish, not k6's default 30 s.
    gracefulStop: __ENV.GRACEFUL_STOP || '5s',
    tags: { endpoint: endpoint },
  };
}

// Rates chosen on a 2-core machine: each is past the capacity of the default setting (login:
// 83 ms of a core per login at PBKDF2_ITER=600000, 24/s on 2 cores; 36/s is 1.5× that).
const SCENARIOS = {
  login: { login: arrival('login', num('RATE', 36), 'login') },
  orders: { orders: arrival('orders', num('RATE', 44), 'orders') },
  report: { report: arrival('report', num('RATE', 20), 'report') },
  mixed: {
    login: arrival('login', 2, 'login'),
    orders: arrival('orders', 10, 'orders'),
    report: arrival('report', 5, 'report'),
  },
};

if (!(SCENARIO in SCENARIOS)) {
  throw new Error(`SCENARIO=${SCENARIO}: one of ${Object.keys(SCENARIOS).join(', ')}`);
}

export const options = {
  scenarios: SCENARIOS[SCENARIO],
  // Every sample k6 can give; no thresholds: the verdict is the analysis's to make.
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

function user() {
  return `user${1 + Math.floor(Math.random() * USERS)}`;
}

export function login() {
  const res = http.post(`${BASE_URL}/login`, JSON.stringify({ user: user(), password: 'correct horse battery staple' }),
    { headers: JSON_HEADERS, tags: { endpoint: 'login' } });
  check(res, { 'login 200': (r) => r.status === 200 }, { endpoint: 'login' });
}

export function orders() {
  const body = { user: user(), item: `sku-${Math.floor(Math.random() * 100)}`, quantity: 1 + Math.floor(Math.random() * 5) };
  const res = http.post(`${BASE_URL}/orders`, JSON.stringify(body), { headers: JSON_HEADERS, tags: { endpoint: 'orders' } });
  check(res, { 'orders 201': (r) => r.status === 201 }, { endpoint: 'orders' });
}

export function report() {
  const res = http.get(`${BASE_URL}/report?user=${user()}`,
    { tags: { endpoint: 'report', name: 'GET /report?user={user}' } });
  check(res, { 'report 200': (r) => r.status === 200 }, { endpoint: 'report' });
}
