// The Lua scripts of the Redis bus. Each runs atomically on the node owning the topic's slot: the
// stream key, meta key and channel share one hash slot ({channel} hash tag).

/**
 * Appends one event to a topic's history and publishes it, in one step.
 * KEYS: stream, meta. ARGV: channel, max length, ttl ms, epoch for a new stream, encoded Event
 * without position, publish command (PUBLISH or SPUBLISH).
 * The position is appended to the Event's bytes as field 4 (protobuf merges concatenated fields),
 * so the script needs no protobuf library. Returns { offset, epoch }.
 */
export const appendScript = `
local function varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
end
local offset = redis.call('HINCRBY', KEYS[2], 'top', 1)
local position = '\\8' .. varint(offset) .. '\\18' .. varint(#epoch) .. epoch
local event = ARGV[5] .. '\\34' .. varint(#position) .. position
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], offset .. '-0', 'e', event)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[6], ARGV[1], event)
return { offset, epoch }
`;

/**
 * Reads a topic's stream state and, unless ARGV[1] is '-', its events from offset ARGV[1] on.
 * KEYS: stream, meta. Returns { epoch or '', top, entries } (entries as XRANGE gives them).
 */
export const readScript = `
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'top')
if not meta[1] then return { '', 0, {} } end
local top = tonumber(meta[2])
if ARGV[1] == '-' then return { meta[1], top, {} } end
return { meta[1], top, redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', '+') }
`;
