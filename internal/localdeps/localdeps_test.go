package localdeps

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
)

func TestRedisRestartIsEmptyAndSamePort(t *testing.T) {
	ctx := context.Background()
	r, err := StartRedis(ctx, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	addr := r.Addr()
	r.Kill()
	if ping(addr) == nil {
		t.Fatal("redis still answers after Kill")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Addr() != addr || ping(addr) != nil {
		t.Fatalf("restarted redis not answering on %s", addr)
	}
}

func TestControlPlaneRestartKeepsDataAndClients(t *testing.T) {
	ctx := context.Background()
	cp, err := StartControlPlane(ctx, ControlPlaneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rr := &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rr-test"},
		Spec: v1alpha1.RemediationRequestSpec{
			Fingerprint: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			SignalName:  "Test", Severity: "warning", Source: "prometheus",
			FiringTime: metav1.Now(), ReceivedTime: metav1.Now(),
		},
	}
	start := time.Now()
	if err := c.Create(ctx, rr); err != nil {
		t.Fatal(err)
	}
	t.Logf("first create took %s", time.Since(start))
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(rr), rr); err == nil {
		t.Fatal("API server answered while stopped")
	}
	start = time.Now()
	if err := cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server restart took %s", time.Since(start))
	if err := c.Get(ctx, client.ObjectKeyFromObject(rr), rr); err != nil {
		t.Fatalf("old client after restart: %v", err)
	}
}
