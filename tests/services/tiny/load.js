// k6 load for tests/services/tiny: GET /work at a constant arrival rate.
import http from 'k6/http';

export const options = {
  scenarios: {
    work: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 20),
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: 5,
      maxVUs: 20,
    },
  },
};

export function setup() {
  // What reached k6's environment, for the tests to read in k6.stderr.txt.
  console.log(`env WORK_ITER=${__ENV.WORK_ITER || ''} PAGE=${__ENV.PAGE || ''}`);
}

export default function () {
  http.get(`${__ENV.BASE_URL}/work`);
}
