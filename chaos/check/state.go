// Package check reads the state a scenario left in Redis and in the API
// server — directly, never through the gateway — and holds it and the
// load's records against the invariants: one file per invariant, and one
// Suite (suite.go) that the scenarios, the runner and random mode all use.
package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv/load"
)

// Key is one gateway key in Redis.
type Key struct {
	Fingerprint string
	// State is "r" (reserved) or "c" (committed).
	State string
	// Seq is the episode the record names.
	Seq   int64
	Count int64
	TTL   time.Duration
	// Written is when the record was last written, by Redis' clock.
	Written time.Time
}

// State is a snapshot of both stores for one namespace and key prefix.
type State struct {
	Keys      []Key
	Resources []v1alpha1.RemediationRequest
}

// Stores are the verifiers' direct handles on Redis and the API server.
type Stores struct {
	Redis redis.Cmdable
	Kube  client.Reader
}

// Read snapshots the gateway keys under prefix and the RemediationRequests
// in namespace.
func Read(ctx context.Context, s Stores, namespace, prefix string) (*State, error) {
	st, err := ReadRedis(ctx, s.Redis, prefix)
	if err != nil {
		return nil, err
	}
	var list v1alpha1.RemediationRequestList
	if err := s.Kube.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("check: list resources: %w", err)
	}
	st.Resources = list.Items
	return st, nil
}

// ReadRedis snapshots the gateway keys under prefix only (for when the API
// server is down).
func ReadRedis(ctx context.Context, rdb redis.Cmdable, prefix string) (*State, error) {
	st := &State{}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var names []string
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("check: scan redis: %w", err)
	}
	for _, name := range names {
		h, ttl, err := readKey(ctx, rdb, name)
		if err != nil {
			return nil, fmt.Errorf("check: read %s: %w", name, err)
		}
		if len(h) == 0 {
			continue // expired between SCAN and the read
		}
		k := Key{Fingerprint: strings.TrimPrefix(name, prefix), State: h["s"], TTL: ttl}
		k.Seq, _ = strconv.ParseInt(h["q"], 10, 64)
		k.Count, _ = strconv.ParseInt(h["n"], 10, 64)
		if w, err := strconv.ParseInt(h["w"], 10, 64); err == nil {
			k.Written = time.Unix(w, 0)
		}
		st.Keys = append(st.Keys, k)
	}
	return st, nil
}

// readKeyScript reads a key's fields and TTL at one instant: a settle
// between a separate HGETALL and PTTL would pair a reservation's fields
// with a record's TTL. no-writes lets it run while Redis is out of memory,
// which refuses a MULTI.
var readKeyScript = redis.NewScript(`#!lua flags=no-writes
return {redis.call('HGETALL', KEYS[1]), redis.call('PTTL', KEYS[1])}`)

func readKey(ctx context.Context, rdb redis.Cmdable, name string) (map[string]string, time.Duration, error) {
	v, err := readKeyScript.Run(ctx, rdb, []string{name}).Slice()
	if err != nil {
		return nil, 0, err
	}
	flat, _ := v[0].([]any)
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		val, _ := flat[i+1].(string)
		h[k] = val
	}
	ms, _ := v[1].(int64)
	if ms < 0 {
		return h, time.Duration(ms), nil // -1 no TTL, -2 no key
	}
	return h, time.Duration(ms) * time.Millisecond, nil
}

// Committed returns the committed keys.
func (s *State) Committed() []Key {
	var out []Key
	for _, k := range s.Keys {
		if k.State == "c" {
			out = append(out, k)
		}
	}
	return out
}

// Reserved returns the reservations.
func (s *State) Reserved() []Key {
	var out []Key
	for _, k := range s.Keys {
		if k.State == "r" {
			out = append(out, k)
		}
	}
	return out
}

// terminal are the phases that end an episode (the gateway's defaults).
var terminal = v1alpha1.NewPhaseSet(nil)

// Open reports whether a resource is an open episode: it exists, is not
// being deleted, and its phase is not terminal.
func Open(r *v1alpha1.RemediationRequest) bool { return terminal.Open(r) }

// ResourcesFor returns the resources carrying a signal's identity.
func (s *State) ResourcesFor(sig load.Signal) []v1alpha1.RemediationRequest {
	var out []v1alpha1.RemediationRequest
	for _, r := range s.Resources {
		if load.SignalOf(&r).Key() == sig.Key() {
			out = append(out, r)
		}
	}
	return out
}
