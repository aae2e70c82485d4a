import { describe, expect, it } from 'vitest';
import { FerryError } from '../src/errors.js';
import { formatPlatform, normalizePlatform, parsePlatform, parsePlatformList, platformFromDescriptor, platformMatches } from '../src/platform.js';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).kind).toBe('usage');
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parsePlatform / formatPlatform', () => {
  it('parses os/arch[/variant], lowercased, as written', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform(' Linux/AMD64 ')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('windows(10.0.17763)/amd64')).toEqual({
      os: 'windows',
      architecture: 'amd64',
      osVersion: '10.0.17763',
    });
  });

  it('formats', () => {
    for (const s of ['linux/arm64/v8', 'linux/amd64', 'linux/arm/v7', 'windows(10.0.17763)/amd64']) {
      expect(formatPlatform(parsePlatform(s))).toBe(s);
    }
  });

  it('refuses bad input with a sentence naming the bad part', () => {
    expect(usageMessage(() => parsePlatform(''))).toBe(
      'invalid platform "": the platform is empty; write OS/ARCH[/VARIANT], e.g. "linux/amd64" or "linux/arm64/v8"',
    );
    expect(usageMessage(() => parsePlatform('amd64'))).toBe(
      'invalid platform "amd64": both the operating system and the architecture are needed; write OS/ARCH[/VARIANT], e.g. "linux/amd64" or "linux/arm64/v8"',
    );
    expect(usageMessage(() => parsePlatform('linux/arm/v7/x'))).toBe(
      'invalid platform "linux/arm/v7/x": it has 4 parts, at most 3 are allowed; write OS/ARCH[/VARIANT], e.g. "linux/amd64" or "linux/arm64/v8"',
    );
    expect(usageMessage(() => parsePlatform('linux/'))).toContain('the architecture is empty');
    expect(usageMessage(() => parsePlatform('/amd64'))).toContain('the operating system is empty');
    expect(usageMessage(() => parsePlatform('linux/arm64/'))).toContain('the variant after the last "/" is empty');
    expect(usageMessage(() => parsePlatform('linux/*'))).toBe('invalid platform "linux/*": architecture "*" is not valid (letters, digits, "_", "." and "-")');
    expect(usageMessage(() => parsePlatform('li nux/amd64'))).toBe(
      'invalid platform "li nux/amd64": operating system "li nux" is not valid (letters, digits, "_" and "-", optionally followed by "(version)")',
    );
  });
});

describe('parsePlatformList', () => {
  it('parses a comma-separated list, ignoring blanks and duplicates', () => {
    expect(parsePlatformList('linux/amd64,linux/arm64/v8')).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect(parsePlatformList(' linux/amd64 , linux/x86_64, linux/arm64,linux/arm64/v8 ').map(formatPlatform)).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('refuses empty lists and entries', () => {
    expect(usageMessage(() => parsePlatformList(''))).toBe(
      'invalid platform list "": it names no platform; write OS/ARCH[/VARIANT], e.g. "linux/amd64" or "linux/arm64/v8", separated by commas',
    );
    expect(usageMessage(() => parsePlatformList('linux/amd64,,linux/arm64'))).toBe(
      'invalid platform list "linux/amd64,,linux/arm64": it has an empty entry between commas',
    );
    expect(usageMessage(() => parsePlatformList('linux/amd64,arm64'))).toContain('invalid platform "arm64"');
  });
});

describe('normalization and matching (containerd rules)', () => {
  it('normalizes', () => {
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toEqual({
      os: 'linux',
      architecture: 'arm64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armel' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm', variant: '6' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(normalizePlatform({ os: 'linux', architecture: 'i386' })).toEqual({ os: 'linux', architecture: '386' });
    expect(normalizePlatform({ os: 'MacOS', architecture: 'arm64' })).toEqual({ os: 'darwin', architecture: 'arm64' });
  });

  const P = parsePlatform;
  const yes: Array<[string, string]> = [
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64', 'linux/aarch64'],
    ['linux/amd64', 'linux/x86_64'],
    ['linux/x86-64', 'linux/amd64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/v7', 'linux/armhf'],
    ['linux/amd64', 'linux/amd64/v1'],
  ];
  const no: Array<[string, string]> = [
    ['linux/amd64', 'linux/arm64'],
    ['linux/amd64', 'windows/amd64'],
    ['linux/arm', 'linux/arm/v6'],
    ['linux/arm64', 'linux/arm64/v9'],
    ['linux/amd64', 'linux/amd64/v3'],
    ['linux/arm/v6', 'linux/arm64'],
  ];
  for (const [w, a] of yes) it(`${w} matches ${a}`, () => expect(platformMatches(P(w), P(a))).toBe(true));
  for (const [w, a] of no) it(`${w} does not match ${a}`, () => expect(platformMatches(P(w), P(a))).toBe(false));

  it('matches an OS version by dotted prefix', () => {
    const actual = { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763.1234' };
    expect(platformMatches(P('windows/amd64'), actual)).toBe(true);
    expect(platformMatches(P('windows(10.0.17763)/amd64'), actual)).toBe(true);
    expect(platformMatches(P('windows(10.0.17763.1234)/amd64'), actual)).toBe(true);
    expect(platformMatches(P('windows(10.0.1776)/amd64'), actual)).toBe(false);
    expect(platformMatches(P('windows(10.0.20348)/amd64'), actual)).toBe(false);
  });
});

describe('platformFromDescriptor', () => {
  it('reads the platform of an index entry', () => {
    expect(
      platformFromDescriptor({
        platform: { architecture: 'arm64', os: 'linux', variant: 'v8', features: ['x'] },
      }),
    ).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(
      platformFromDescriptor({
        platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.1234' },
      }),
    ).toEqual({ os: 'windows', architecture: 'amd64', osVersion: '10.0.17763.1234' });
    expect(platformFromDescriptor({})).toBeUndefined();
  });
});
