// Shared by the scenario scripts: settings from the environment and one function per endpoint.
// Every request is tagged {endpoint: ...}; URLs with an id also get a `name` tag so k6 keeps
// one time series per endpoint instead of one per user id.
import http from 'k6/http';
import { check } from 'k6';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8000';
export const USERS = parseInt(__ENV.USERS || '5000', 10);
export const CHALLENGES = parseInt(__ENV.CHALLENGES || '10', 10);
export const PASSWORD = __ENV.PASSWORD || 'password';
export const DURATION = __ENV.DURATION || '30s';

export function num(name, dflt) {
  const v = __ENV[name];
  return v === undefined || v === '' ? dflt : Number(v);
}

// constant-arrival-rate: iterations start on a fixed schedule whatever the latency, so a
// slow service shows up as latency and dropped iterations, not as a politely lower rate
// (no coordinated omission). Rates may be fractional: they are expressed per 10 s.
export function arrival(exec, ratePerSecond, preVUs, maxVUs, tags) {
  return {
    executor: 'constant-arrival-rate',
    exec: exec,
    rate: Math.max(1, Math.round(ratePerSecond * 10)),
    timeUnit: '10s',
    duration: DURATION,
    preAllocatedVUs: preVUs,
    maxVUs: Math.max(maxVUs, preVUs),
    tags: tags,
  };
}

function userId() {
  return 1 + Math.floor(Math.random() * USERS);
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function login() {
  const u = userId();
  const res = http.post(`${BASE_URL}/login`, JSON.stringify({ user: `user${u}`, password: PASSWORD }),
    { headers: JSON_HEADERS, tags: { endpoint: 'login' } });
  check(res, { 'login 200': (r) => r.status === 200 }, { endpoint: 'login' });
}

export function record() {
  const body = {
    user_id: userId(),
    challenge_id: 1 + Math.floor(Math.random() * CHALLENGES),
    score: Math.floor(Math.random() * 10000),
    duration_ms: 30000 + Math.floor(Math.random() * 570000),
    level: 1 + Math.floor(Math.random() * 60),
  };
  const res = http.post(`${BASE_URL}/records`, JSON.stringify(body),
    { headers: JSON_HEADERS, tags: { endpoint: 'records' } });
  check(res, { 'records 201/202': (r) => r.status === 201 || r.status === 202 }, { endpoint: 'records' });
}

export function challenges() {
  const res = http.get(`${BASE_URL}/challenges/${userId()}`,
    { tags: { endpoint: 'challenges', name: 'GET /challenges/{user_id}' } });
  check(res, { 'challenges 200': (r) => r.status === 200 }, { endpoint: 'challenges' });
}

export function report() {
  const res = http.get(`${BASE_URL}/report/${userId()}`,
    { tags: { endpoint: 'report', name: 'GET /report/{user_id}' } });
  check(res, { 'report 200': (r) => r.status === 200 }, { endpoint: 'report' });
}

export function p95(endpoint, dfltMs) {
  return { [`http_req_duration{endpoint:${endpoint}}`]: [`p(95)<${num('P95_MS', dfltMs)}`] };
}
