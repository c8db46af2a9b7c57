import { describe, expect, it } from 'vitest';
import { hashSlot } from '../../src/bus/slot.js';

describe('hashSlot', () => {
  it.each([
    ['123456789', 0x31c3], // the CRC16/XMODEM check value
    ['foo', 12182],
    ['bar', 5061],
    ['', 0],
  ])('%j is in slot %i (as CLUSTER KEYSLOT says)', (key, slot) => {
    expect(hashSlot(key)).toBe(slot);
  });

  it('hashes only a non-empty {hash tag}', () => {
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('user1000'));
    expect(hashSlot('{relaygate:acme:a/b}:stream')).toBe(hashSlot('relaygate:acme:a/b'));
    expect(hashSlot('{}.x')).toBe(hashSlot('{}.x'));
    expect(hashSlot('{}.x')).not.toBe(hashSlot(''));
    expect(hashSlot('a{b}{c}')).toBe(hashSlot('b'));
    expect(hashSlot('a{b')).not.toBe(hashSlot('b'));
  });

});
