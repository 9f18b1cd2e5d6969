//! The Lua scripts: every write that must be atomic is one script on one meeting's keys.
//!
//! `#!lua` makes them Redis 7 "function-like" scripts: Redis refuses one before it starts when
//! it is out of memory (instead of failing a write half way), and on a Cluster only keys of one
//! slot may be used, which the hash tags guarantee. Offsets are kept as decimal strings and
//! compared as strings, so no offset passes through a Lua number except to add one.

use redis::Script;
use std::sync::LazyLock;

/// Writes the events in `ARGV[first..]` after offset `after` (a decimal string), moves the
/// record, and publishes the batch with its offsets on `channel`. Returns the new last offset.
/// The published message is `{"v":1,"after":N,"events":[<stored event>,...]}`.
const WRITE_EVENTS: &str = r#"
local function write_events(meta, log, channel, batch, after, status, ended_at, schedule,
                            publication, first)
  local n = tonumber(after)
  for i = first, #ARGV do
    n = n + 1
    redis.call('XADD', log, string.format('%d-0', n), 'e', ARGV[i], 'b', batch)
  end
  local last = string.format('%d', n)
  redis.call('HSET', meta, 'last_offset', last)
  if status ~= '' then
    redis.call('HSET', meta, 'status', status, 'ended_at', ended_at)
  end
  if schedule ~= '' then redis.call('HSET', meta, 'schedule', schedule) end
  if publication ~= '' then redis.call('HSET', meta, 'publication', publication) end
  if #ARGV >= first then
    redis.call('PUBLISH', channel,
      '{"v":1,"after":' .. after .. ',"events":[' .. table.concat(ARGV, ',', first) .. ']}')
  end
  return last
end
"#;

/// KEYS: meta, log. ARGV: expected offset, channel, batch id, new status or '', its ended_at
/// or '', new schedule or '', new publication or '' (both JSON), events… Replies `{0, last}`, `{1, actual}` (conflict) or `{2, ''}` (no meeting).
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "#!lua\n{WRITE_EVENTS}{}",
        r#"
local last = redis.call('HGET', KEYS[1], 'last_offset')
if not last then return {2, ''} end
if last ~= ARGV[1] then return {1, last} end
return {0, write_events(KEYS[1], KEYS[2], ARGV[2], ARGV[3], last, ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], 8)}
"#
    ))
});

/// KEYS: meta, log. ARGV: channel, batch id, title, status, created_at, ended_at or '',
/// moderator token hash, studio token hash, schedule or '', publication or '' (both JSON),
/// events… Replies `{0, last}` or `{3, ''}` (exists).
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "#!lua\n{WRITE_EVENTS}{}",
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {3, ''} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'v', '1', 'title', ARGV[3], 'status', ARGV[4],
  'created_at', ARGV[5], 'ended_at', ARGV[6], 'moderator_token_hash', ARGV[7],
  'studio_token_hash', ARGV[8], 'last_offset', '0')
return {0, write_events(KEYS[1], KEYS[2], ARGV[1], ARGV[2], '0', '', '', ARGV[9], ARGV[10], 11)}
"#
    ))
});

/// KEYS: meta. ARGV: moderator hash, studio hash. Replies 1, or 0 when there is no meeting.
pub(crate) static SET_TOKENS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'moderator_token_hash', ARGV[1], 'studio_token_hash', ARGV[2])
return 1
"#,
    )
});

/// KEYS: meta, log, presence. Replies 1 if the meeting existed.
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"#!lua
local existed = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return existed
"#,
    )
});

/// KEYS: presence. ARGV: node, count, ttl in ms. Sets (or, for 0, removes) this node's count
/// with an expiry on Redis's clock, drops expired counts, and replies the sum of the rest.
pub(crate) static PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if count > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', count, now + ttl))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local total, latest = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local c, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if c and tonumber(expires) > now then
    total = total + tonumber(c)
    if tonumber(expires) > latest then latest = tonumber(expires) end
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if latest > 0 then redis.call('PEXPIREAT', KEYS[1], string.format('%d', latest)) end
return total
"#,
    )
});
