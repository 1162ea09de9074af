package dedup

import "github.com/redis/go-redis/v9"

// A fingerprint is one Redis hash, KEY = prefix + fingerprint:
//
//	s  state: "r" reserved (lease running) or "c" committed
//	t  token of the request holding the reservation (reserved only)
//	n  occurrence count
//	b  naming bucket of the resource (see pipeline.ResourceName)
//	f  first seen, unix seconds (the status keeps seconds too)
//	l  last seen, unix seconds
//
// A reservation lives for the lease; a committed fingerprint for the dedup
// window, refreshed by every duplicate. Each script touches one key, so the
// layout works on Redis Cluster too.

// claimScript counts a duplicate or reserves the fingerprint, atomically.
// ARGV: token, now_s, lease_ms, window_ms, bucket, increment, peek.
// Returns {state, count, bucket, first_s}; state as pipeline.ClaimState.
var claimScript = redis.NewScript(`
local k = KEYS[1]
local st = redis.call('HGET', k, 's')
if st == 'c' or (st == 'r' and ARGV[7] ~= '1') then
  local n = redis.call('HINCRBY', k, 'n', ARGV[6])
  redis.call('HSET', k, 'l', ARGV[2])
  if st == 'c' then
    redis.call('PEXPIRE', k, ARGV[4])
  end
  local v = redis.call('HMGET', k, 'b', 'f')
  if st == 'c' then
    return {1, n, tonumber(v[1]), tonumber(v[2])}
  end
  return {2, n, tonumber(v[1]), tonumber(v[2])}
end
if ARGV[7] == '1' then
  return {3, 0, 0, 0}
end
redis.call('HSET', k, 's', 'r', 't', ARGV[1], 'n', ARGV[6], 'b', ARGV[5], 'f', ARGV[2], 'l', ARGV[2])
redis.call('PEXPIRE', k, ARGV[3])
return {0, tonumber(ARGV[6]), tonumber(ARGV[5]), tonumber(ARGV[2])}
`)

// settleScript commits or releases a claim.
// ARGV: token, now_s, window_ms, bucket, count, commit.
//
// Commit marks the fingerprint committed whoever holds the reservation: the
// caller has seen the resource exist. If the reservation is gone (lease
// expired, Redis restarted) it is recreated as committed, since the
// resource exists. Release deletes the key only if this token still holds
// the reservation.
var settleScript = redis.NewScript(`
local k = KEYS[1]
local v = redis.call('HMGET', k, 's', 't', 'n')
if ARGV[6] == '1' then
  if v[1] == 'c' then
    return 0
  end
  if v[1] == 'r' then
    redis.call('HSET', k, 's', 'c')
    redis.call('HDEL', k, 't')
    if tonumber(v[3]) < tonumber(ARGV[5]) then
      redis.call('HSET', k, 'n', ARGV[5])
    end
  else
    redis.call('HSET', k, 's', 'c', 'n', ARGV[5], 'b', ARGV[4], 'f', ARGV[2], 'l', ARGV[2])
  end
  redis.call('PEXPIRE', k, ARGV[3])
  return 1
end
if v[1] == 'r' and v[2] == ARGV[1] then
  redis.call('DEL', k)
  return 1
end
return 0
`)

// renewScript extends a reservation held by this token to a full lease.
// ARGV: token, lease_ms. Returns 1 if renewed, 0 if the reservation is no
// longer this token's (expired, taken over, Redis restarted): the create
// goes on, since the resource name arbitrates, and the commit records it.
var renewScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 's', 't')
if v[1] == 'r' and v[2] == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)
