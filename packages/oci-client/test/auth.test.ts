import { describe, expect, it } from 'vitest';
import { isInsufficientScope, mergeScopes, parseChallenge, repositoryScope } from '../src/auth.js';
import { parseRetryAfter } from '../src/retry-policy.js';
import { redactUrl } from '../src/transport.js';

describe('WWW-Authenticate challenges', () => {
  it('parses a bearer challenge with quoted values', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
  });

  it('parses basic challenges, bare values and escaped quotes', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseChallenge('bearer realm=http://x/token, service=s')?.params).toEqual({ realm: 'http://x/token', service: 's' });
    expect(parseChallenge('Bearer realm="a\\"b"')?.params.realm).toBe('a"b');
  });

  it('ignores schemes it cannot answer', () => {
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
    expect(parseChallenge(undefined)).toBeUndefined();
  });

  it('recognises insufficient_scope', () => {
    expect(isInsufficientScope('Bearer realm="r",service="s",scope="repository:a:push",error="insufficient_scope"')).toBe(true);
    expect(isInsufficientScope('Bearer realm="r",service="s"')).toBe(false);
  });
});

describe('scopes', () => {
  it('merges actions per repository and keeps other resources apart', () => {
    expect(
      mergeScopes([repositoryScope('team/app', ['pull']), repositoryScope('team/app', ['push']), repositoryScope('base/img', ['pull']), 'registry:catalog:*']),
    ).toEqual(['registry:catalog:*', 'repository:base/img:pull', 'repository:team/app:pull,push']);
  });

  it('keeps repositories whose names contain colons of a port-less path intact', () => {
    expect(mergeScopes(['repository:a/b:pull,push', 'repository:a/b:pull'])).toEqual(['repository:a/b:pull,push']);
  });
});

describe('transport helpers', () => {
  it('reads Retry-After in seconds and as an HTTP date', () => {
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter(' 3 ')).toBe(3000);
    const inTwo = new Date(Date.now() + 2000).toUTCString();
    expect(parseRetryAfter(inTwo)).toBeGreaterThan(500);
    expect(parseRetryAfter(inTwo)).toBeLessThanOrEqual(2000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('drops query strings, which carry upload state and signed-URL secrets', () => {
    expect(redactUrl('https://s3.example/bucket/blob?X-Amz-Signature=secret&X-Amz-Credential=key')).toBe('https://s3.example/bucket/blob');
  });
});
