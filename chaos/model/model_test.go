package model

import (
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

// Each rule of the model holds on a healthy history and reports the one
// thing broken in a damaged copy.

const fp = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

var (
	t0  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sig = load.Signal{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "api-0"}
	e1  = v1alpha1.EpisodeName(fp, 1)
	e2  = v1alpha1.EpisodeName(fp, 2)
)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func request(seq int, start float64, status int, name, outcome string) load.Record {
	return load.Record{Seq: seq, Gateway: "gw-0", Start: at(start), Duration: 20 * time.Millisecond, Status: status, Signals: []load.Signal{sig},
		Outcomes: []pipeline.Outcome{{Index: 0, Fingerprint: fp, Name: name, Status: pipeline.Status(outcome)}}}
}

func event(typ string, s float64, name, uid string, seq int64, phase string) history.ResourceEvent {
	return history.ResourceEvent{At: at(s), Type: typ, Name: name, UID: uid, Fingerprint: fp, Episode: seq, Key: sig.Key(), Phase: phase}
}

// healthy: an episode opened, attached to, completed by a controller; the
// next occurrence opens the next episode; Redis names it.
func healthy() *history.History {
	return &history.History{
		Terminal: []string{"Completed", "Failed"}, Start: t0, End: at(20),
		Requests: []load.Record{
			request(1, 0, 201, e1, "created"),
			request(2, 1, 202, e1, "duplicate"),
			request(3, 8, 201, e2, "created"),
		},
		Resources: []history.ResourceEvent{
			event("ADDED", 0.01, e1, "u1", 1, ""),
			event("MODIFIED", 0.5, e1, "u1", 1, "Pending"),
			event("MODIFIED", 5.01, e1, "u1", 1, "Completed"),
			event("ADDED", 8.01, e2, "u2", 2, ""),
		},
		Actions: []history.Action{{Seq: 1, At: at(5), Kind: history.ActPhase, Phase: "Completed", Resource: e1, Fingerprint: fp, Episode: 1}},
		Records: []history.RecordSnapshot{{At: at(9), Fingerprint: fp, State: "c", Seq: 2, Written: at(8)}},
	}
}

func only(t *testing.T, h *history.History, invariant, detail string) {
	t.Helper()
	vs := Check(h, Options{}).Violations
	if len(vs) != 1 || vs[0].Invariant != invariant || !strings.Contains(vs[0].Detail, detail) {
		t.Fatalf("want one %s violation mentioning %q, got %v", invariant, detail, vs)
	}
}

func TestHealthyHistoryHolds(t *testing.T) {
	r := Check(healthy(), Options{})
	if len(r.Violations) != 0 {
		t.Fatal(r.Violations)
	}
	if s := r.Stats; s.Episodes != 2 || s.Ended != 1 || s.Occurrences != 3 || s.Actions != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestOneOpenCatchesAnEpisodeOpenedWhileAnotherIsOpen(t *testing.T) {
	h := healthy()
	h.Resources = append(h.Resources[:2], h.Resources[3]) // the completion never happened
	h.Actions = nil
	h.Records = nil
	vs := Check(h, Options{}).Violations
	// Both by fingerprint and by signal identity, one report each pair.
	if len(vs) == 0 || vs[0].Invariant != OneOpen || !strings.Contains(vs[0].Detail, "while "+e1+" was open") {
		t.Fatalf("got %v", vs)
	}
	// Request 3 attached to nothing wrong; only M1 is broken.
	for _, v := range vs {
		if v.Invariant != OneOpen {
			t.Errorf("unexpected %v", v)
		}
	}
}

func TestAttachedCatchesAnAcknowledgementOfNothing(t *testing.T) {
	h := healthy()
	h.Requests[1].Outcomes[0].Name = v1alpha1.EpisodeName(fp, 9)
	only(t, h, Attached, "which existed never")
	// Created only long after the answer: acknowledged before stored.
	h = healthy()
	h.Resources[3].At = at(12)
	only(t, h, Attached, "which existed only at")
	// No name at all.
	h = healthy()
	h.Requests[0].Outcomes[0].Name = ""
	only(t, h, Attached, "without naming an episode")
}

func TestNoAbsorbCatchesAnOccurrenceAttachedToAnEndedEpisode(t *testing.T) {
	h := healthy()
	h.Requests[2] = request(3, 8, 202, e1, "duplicate") // into the completed episode
	h.Resources = h.Resources[:3]
	h.Records = nil
	only(t, h, NoAbsorb, "which ended (phase Completed)")
	v := Check(h, Options{}).Violations[0]
	if len(v.Actions) != 1 || v.Actions[0] != 1 || len(v.Requests) == 0 {
		t.Errorf("the violation names requests %v and actions %v, want the request and the completion", v.Requests, v.Actions)
	}
	// Within the bound of the end: allowed.
	h.Requests[2].Start = at(6.5)
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("within the bound: %v", vs)
	}
	// The API was unreachable for the gateway from 4 s to 7.5 s: it could
	// not know before 7.5 s, so 8 s is within the bound.
	h.Requests[2].Start = at(8)
	h.Faults = []history.Fault{{Name: "kubernetes-down", Blinds: []string{history.BlindKubernetes}, Inject: at(4), Heal: at(7.5)}}
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("the gateway was blind until 7.5 s: %v", vs)
	}
	// A pause of another gateway does not excuse this one.
	h.Faults = []history.Fault{{Name: "gateway-pause", Blinds: []string{history.BlindGateway}, Gateways: []string{"gw-1"}, Inject: at(4), Heal: at(7.5)}}
	only(t, h, NoAbsorb, "which ended")
}

func TestRecordsOpenCatchesARecordOfAnEndedEpisode(t *testing.T) {
	h := healthy()
	h.Records = append(h.Records, history.RecordSnapshot{At: at(9), Fingerprint: fp, State: "c", Seq: 1, Written: at(1)})
	only(t, h, RecordsOpen, "names "+e1+", which ended")
	// Rewritten by a late commit at 8.5 s: still one the gateway should
	// not have written.
	h.Records[1].Written = at(8.5)
	only(t, h, RecordsOpen, "names "+e1+", which ended")
	// Within the bound of the end: allowed.
	h.Records[1].At = at(6.5)
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("read within the bound of the end: %v", vs)
	}
	h = healthy()
	h.Final.Records = []history.RecordSnapshot{{At: at(19), Fingerprint: fp, State: "c", Seq: 7, Written: at(2)}}
	only(t, h, RecordsOpen, "which never existed")
	// A reservation names an episode being opened: not checked here.
	h.Final.Records[0].State = "r"
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("a reservation: %v", vs)
	}
}

// A name taken again after a deletion is another episode: the first
// one's end does not make the second one's acknowledgements stale.
func TestANameTakenAgainIsAnotherEpisode(t *testing.T) {
	h := &history.History{Start: t0, End: at(20),
		Requests: []load.Record{request(1, 0, 201, e1, "created"), request(2, 8, 201, e1, "created"), request(3, 9, 202, e1, "duplicate")},
		Resources: []history.ResourceEvent{
			event("ADDED", 0.01, e1, "u1", 1, ""),
			event("DELETED", 5.01, e1, "u1", 1, ""),
			event("ADDED", 8.01, e1, "u3", 1, ""),
		},
		Actions: []history.Action{{Seq: 1, At: at(5), Kind: history.ActDelete, Resource: e1, Fingerprint: fp, Episode: 1}},
	}
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
}

func TestPictureNamesTheViolations(t *testing.T) {
	h := healthy()
	h.Requests[2] = request(3, 8, 202, e1, "duplicate")
	h.Resources = h.Resources[:3]
	r := Check(h, Options{})
	page := string(Picture(h, r))
	for _, want := range []string{"<svg", "1 violations", "M3 ended episodes absorb nothing", "action 1 phase Completed"} {
		if !strings.Contains(page, want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
}

func TestResolutionFollowsTheMembers(t *testing.T) {
	app, side := sig, sig
	app.Container, side.Container = "app", "sidecar"
	app.StartsAt, side.StartsAt = at(-60), at(-50)
	ack := func(seq int, start float64, s load.Signal, status string) load.Record {
		code := 202
		if status == "resolved" {
			code = 200
		}
		return load.Record{Seq: seq, Gateway: "gw-0", Start: at(start), Duration: 20 * time.Millisecond, Status: code, Signals: []load.Signal{s},
			Outcomes: []pipeline.Outcome{{Index: 0, Fingerprint: fp, Name: e1, Status: pipeline.Status(status)}}}
	}
	base := func() *history.History {
		return &history.History{Start: t0, End: at(20),
			Requests:  []load.Record{ack(1, 0, app, "created"), ack(2, 1, side, "duplicate"), ack(3, 2, app.Resolve(at(2)), "resolved")},
			Resources: []history.ResourceEvent{event("ADDED", 0.01, e1, "u1", 1, "")},
			Final:     history.Final{Resources: []history.FinalResource{{Name: e1, UID: "u1", Fingerprint: fp, Episode: 1, Key: sig.Key()}}},
		}
	}
	// One of two members resolved: not resolved.
	if vs := Check(base(), Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
	h := base()
	h.Final.Resources[0].Resolved = true
	only(t, h, Resolution, "is resolved at the end, but its members' last notifications say not resolved")
	// Both resolved: resolved.
	h = base()
	h.Requests = append(h.Requests, ack(4, 3, side.Resolve(at(3)), "resolved"))
	only(t, h, Resolution, "is not resolved at the end, but its members' last notifications say resolved")
	// A resolution that got no answer may or may not have been applied:
	// not judged either way.
	h = base()
	h.Requests = append(h.Requests, load.Record{Seq: 4, Start: at(3), Duration: time.Second, Status: 503, Signals: []load.Signal{side.Resolve(at(3))}})
	for _, resolved := range []bool{false, true} {
		h.Final.Resources[0].Resolved = resolved
		if vs := Check(h, Options{}).Violations; len(vs) != 0 {
			t.Errorf("resolved=%v with an unanswered resolution: %v", resolved, vs)
		}
	}
	// A re-fire after both resolved clears it; a stale repeat does not.
	h = base()
	h.Requests = append(h.Requests, ack(4, 3, side.Resolve(at(3)), "resolved"), ack(5, 4, app, "duplicate"))
	h.Final.Resources[0].Resolved = true
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("a stale repeat of app's firing un-resolved it: %v", vs)
	}
	h.Requests = append(h.Requests, ack(6, 5, app.Refire(at(4.5)), "duplicate"))
	only(t, h, Resolution, "is resolved at the end, but its members' last notifications say not resolved")
}

// A watch that was resuming saw the episode late; its creation time tells
// it existed when the occurrence was acknowledged.
func TestALateSightingCountsFromTheCreation(t *testing.T) {
	h := healthy()
	h.Resources[3].At = at(12)
	h.Resources[3].Created = at(8).Truncate(time.Second)
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
}

// The controller deletes an episode and the next occurrence opens one of
// the same name within a second: the deletion ended the first object, not
// the second (actions are matched by UID).
func TestADeletionEndsTheObjectItDeleted(t *testing.T) {
	h := &history.History{Start: t0, End: at(20),
		Requests: []load.Record{request(1, 0, 201, e1, "created"), request(2, 5.1, 201, e1, "created"), request(3, 8, 202, e1, "duplicate")},
		Resources: []history.ResourceEvent{
			event("ADDED", 0.01, e1, "u1", 1, ""),
			event("DELETED", 5.01, e1, "u1", 1, ""),
			event("ADDED", 5.12, e1, "u2", 1, ""),
		},
		Actions: []history.Action{{Seq: 1, At: at(5), Kind: history.ActDelete, Resource: e1, UID: "u1", Fingerprint: fp, Episode: 1}},
		Final:   history.Final{Resources: []history.FinalResource{{Name: e1, UID: "u2", Fingerprint: fp, Episode: 1, Key: sig.Key()}}},
	}
	h.Resources[0].Created = at(0).Truncate(time.Second)
	h.Resources[2].Created = at(5).Truncate(time.Second) // the same second as the deletion
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
}

// M6: every alert a real Alertmanager was given must have gone out in an
// acknowledged delivery as given; a refusal it does not retry (a 429, a
// 400 for a batch with one bad alert) leaves one unacknowledged.
func TestGivenCatchesAnAlertNeverAcknowledged(t *testing.T) {
	fired := sig
	fired.StartsAt = at(-1)
	resolved := fired.Resolve(at(4))
	delivery := func(seq int, start float64, status int, s load.Signal, outcome string) load.Record {
		r := load.Record{Seq: seq, Sender: "am-0", Gateway: "gw-0", Start: at(start), Duration: 20 * time.Millisecond, Status: status, Signals: []load.Signal{s}}
		if status < 300 {
			r.Outcomes = []pipeline.Outcome{{Index: 0, Fingerprint: fp, Name: e1, Status: pipeline.Status(outcome)}}
		}
		return r
	}
	base := func() *history.History {
		return &history.History{Start: t0, End: at(20),
			Requests:      []load.Record{delivery(1, 0, 201, fired, "created")},
			Resources:     []history.ResourceEvent{event("ADDED", 0.01, e1, "u1", 1, "")},
			Alertmanagers: []history.Alertmanager{{Name: "am", Senders: []string{"am-0"}, Given: []load.GivenAlert{{Signal: fired, FiredAt: at(-0.5)}}}},
		}
	}
	if vs := Check(base(), Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
	// Refused with 429, never retried.
	h := base()
	h.Requests[0] = delivery(1, 0, 429, fired, "")
	h.Resources = nil
	only(t, h, Given, "its 1 deliveries were answered [429]")
	// Retried after a 503 and acknowledged: holds.
	h.Requests = append(h.Requests, delivery(2, 1, 201, fired, "created"))
	h.Resources = []history.ResourceEvent{event("ADDED", 1.01, e1, "u1", 1, "")}
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("acknowledged on a retry: %v", vs)
	}
	// Resolved: its resolution must go out too; the firing need not, once
	// superseded by the resolution.
	h = base()
	h.Alertmanagers[0].Given[0] = load.GivenAlert{Signal: resolved, FiredAt: at(-0.5), ResolvedAt: at(4)}
	only(t, h, Given, "resolved at")
	h.Requests = append(h.Requests, delivery(2, 5, 200, resolved, "resolved"))
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Errorf("its resolution acknowledged: %v", vs)
	}
	// Another sender's acknowledgement does not count.
	h = base()
	h.Requests[0].Sender = "loop-0"
	only(t, h, Given, "(none was made)")
}

// The watch resyncing after an API server restart can miss an episode
// created and deleted meanwhile; the controller that deleted it read it,
// so the model still knows it existed (random mode, seeds 6 and 9, 2
// minutes, flagged an acknowledgement into it as M2 before).
func TestAnEpisodeOnlyTheControllerSawExisted(t *testing.T) {
	h := &history.History{Start: t0, End: at(20),
		Requests: []load.Record{request(1, 1.2, 201, e1, "created"), request(2, 2, 202, e1, "duplicate"), request(3, 7, 201, e1, "created")},
		// The watch resynced at 6 s: it never saw u1, created at 1.2 s and
		// deleted at 5.6 s.
		Resources: []history.ResourceEvent{event("ADDED", 7.01, e1, "u2", 1, "")},
		Actions: []history.Action{{Seq: 1, At: at(5.6), Kind: history.ActDelete, Resource: e1, UID: "u1", Fingerprint: fp, Episode: 1,
			Key: sig.Key(), Created: at(1).Truncate(time.Second)}},
	}
	h.Resources[0].Created = at(7).Truncate(time.Second)
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
	// Without what the controller read, the acknowledgements name nothing.
	h.Actions[0].Created = time.Time{}
	vs := Check(h, Options{}).Violations
	if len(vs) != 2 || vs[0].Invariant != Attached {
		t.Fatalf("want the two acknowledgements into u1 as M2, got %v", vs)
	}
	// Seen by the controller only, it is held against the others by time:
	// opened while another episode of its fingerprint was open.
	h.Actions[0].Created = at(1).Truncate(time.Second)
	h.Resources = append([]history.ResourceEvent{event("ADDED", 0.5, e2, "u0", 2, ""), event("DELETED", 6.5, e2, "u0", 2, "")}, h.Resources...)
	h.Requests = append([]load.Record{request(0, 0.45, 201, e2, "created")}, h.Requests...)
	only(t, h, OneOpen, "(seen by the controller only) was open from")
}

// An episode only the controller saw keeps its place among the episodes
// of its name: the next one, seen by the watch, takes the occurrences
// after it ended.
func TestAnUnseenEpisodeKeepsItsPlaceByName(t *testing.T) {
	h := &history.History{Start: t0, End: at(20),
		Requests:  []load.Record{request(1, 1.2, 201, e1, "created"), request(2, 7, 201, e1, "created"), request(3, 9, 202, e1, "duplicate")},
		Resources: []history.ResourceEvent{event("ADDED", 7.01, e1, "u2", 1, "")},
		Actions: []history.Action{{Seq: 1, At: at(5.6), Kind: history.ActDelete, Resource: e1, UID: "u1", Fingerprint: fp, Episode: 1,
			Key: sig.Key(), Created: at(1).Truncate(time.Second)}},
	}
	if vs := Check(h, Options{}).Violations; len(vs) != 0 {
		t.Fatal(vs)
	}
}
