package dedup

import "github.com/redis/go-redis/v9"

// A fingerprint is one Redis hash, KEY = prefix + fingerprint:
//
//	s  state: "r" reserved (a request is opening an episode) or "c"
//	   committed (the episode is open, as far as this record knows)
//	t  token of the request holding the reservation (reserved only)
//	q  the episode's sequence number (see v1alpha1.EpisodeName)
//	n  occurrence count of the episode
//	f  first seen, unix seconds (the gateway's clock)
//	l  last seen, unix seconds (the gateway's clock)
//	w  when the record was last created or replaced, unix seconds (Redis'
//	   own clock): the verifiers bound a stale record from it; counting an
//	   occurrence into it does not change it
//
// A reservation lives for the lease; a committed record for the dedup
// window after its last occurrence. Each script's first write is one that
// Redis refuses when out of memory (HSET, HINCRBY): once a script has
// written, Redis lets it finish. Redis is the fast path, not the identity: a record is trusted only where the gateway's view of the API
// server agrees with it (the claim's open and next arguments), and a record
// that names an ended episode is deleted when the gateway sees it end. Each
// script touches one key, so the layout works on Redis Cluster too.

// claimScript attaches an occurrence to the open episode or reserves
// opening the next one, atomically.
// ARGV: token, now_s, lease_ms, window_ms, increment, peek, open, next,
// base, authoritative. open is the episode the gateway's view says is open
// (0: none), next the number a new episode takes, base the open episode's
// projected count.
// Returns {state, seq, count, first_s}; state as pipeline.ClaimState.
var claimScript = redis.NewScript(`
local k = KEYS[1]
local v = redis.call('HMGET', k, 's', 'q', 't', 'n', 'f')
local st, q, tok = v[1], tonumber(v[2]) or 0, v[3]
local inc, open, nxt = tonumber(ARGV[5]), tonumber(ARGV[7]), tonumber(ARGV[8])
local peek, auth = ARGV[6] == '1', ARGV[10] == '1'
local function written()
  redis.call('HSET', k, 'w', redis.call('TIME')[1])
end
if open > 0 and q == open and (st == 'c' or st == 'r') then
  local n = redis.call('HINCRBY', k, 'n', inc)
  redis.call('HSET', k, 'l', ARGV[2])
  if st == 'c' then
    redis.call('PEXPIRE', k, ARGV[4])
  end
  return {0, q, n, tonumber(v[5]) or 0}
end
if st == 'r' and tok ~= ARGV[1] and q >= nxt then
  if peek then
    return {4, 0, 0, 0}
  end
  local n = redis.call('HINCRBY', k, 'n', inc)
  return {2, q, n, tonumber(v[5]) or 0}
end
if st == 'c' and q >= nxt and not auth then
  return {3, q, tonumber(v[4]) or 0, 0}
end
if open > 0 then
  local n = tonumber(ARGV[9]) + inc
  redis.call('HSET', k, 's', 'c', 'q', open, 'n', n, 'f', ARGV[2], 'l', ARGV[2])
  redis.call('HDEL', k, 't')
  written()
  redis.call('PEXPIRE', k, ARGV[4])
  return {0, open, n, tonumber(ARGV[2])}
end
if peek then
  return {4, 0, 0, 0}
end
redis.call('HSET', k, 's', 'r', 't', ARGV[1], 'q', nxt, 'n', inc, 'f', ARGV[2], 'l', ARGV[2])
written()
redis.call('PEXPIRE', k, ARGV[3])
return {1, nxt, inc, tonumber(ARGV[2])}
`)

// settleScript commits or releases a reservation, only if this token holds
// it: a commit never adopts another request's reservation, and a record
// that changed meanwhile is left as it is.
// ARGV: token, window_ms, seq, count, commit.
// Returns 1 if the reservation was this token's, else 0.
var settleScript = redis.NewScript(`
local k = KEYS[1]
local v = redis.call('HMGET', k, 's', 't', 'n')
if v[1] ~= 'r' or v[2] ~= ARGV[1] then
  return 0
end
if ARGV[5] ~= '1' then
  redis.call('DEL', k)
  return 1
end
redis.call('HSET', k, 's', 'c', 'q', ARGV[3], 'w', redis.call('TIME')[1])
redis.call('HDEL', k, 't')
if (tonumber(v[3]) or 0) < tonumber(ARGV[4]) then
  redis.call('HSET', k, 'n', ARGV[4])
end
redis.call('PEXPIRE', k, ARGV[2])
return 1
`)

// invalidateScript deletes a committed record that names an episode which
// has ended. ARGV: seq. Returns 1 if it was deleted.
var invalidateScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 's', 'q')
if v[1] == 'c' and v[2] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)
