// Preloaded into every ferry process the tests start (NODE_OPTIONS=--import):
// name lookups answer only for loopback names and fail like an unknown host for
// every other name, so no test can send a DNS query or a packet off this machine.
import dns from 'node:dns';

const LOOPBACK = new Map([['localhost', '127.0.0.1']]);
const original = dns.lookup;

dns.lookup = function lookup(hostname, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const opts = typeof options === 'object' && options !== null ? options : {};
  const literal = /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.includes(':');
  if (literal || LOOPBACK.has(hostname)) return original.call(dns, LOOPBACK.get(hostname) ?? hostname, options, callback);
  const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname });
  process.nextTick(() => (opts.all ? cb(err, []) : cb(err)));
};
