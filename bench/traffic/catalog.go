package traffic

// rule is one kube-prometheus alerting rule as Alertmanager delivers it:
// its name, severity, the label naming its object, the extra labels its
// series carry, and its annotations.
type rule struct {
	name     string
	severity string
	// target is the label naming the object ("pod", "deployment", …);
	// empty for cluster-wide alerts, which kube-prometheus labels with
	// neither a namespace nor an object.
	target string
	// clusterScoped objects (nodes) carry no namespace label.
	clusterScoped bool
	// labels are added as they are, except the values "$obj", "$node",
	// "$container", "$uid" and "$ip:<port>", which are replaced (the
	// namespace label is set apart, from the chosen namespace).
	labels  [][2]string
	group   string // runbook group
	summary string
	// description is a format with the namespace and the object name.
	description string
}

// ksm are the labels of a kube-state-metrics series scraped through
// kube-prometheus' ServiceMonitor, which drops the pod, service, endpoint
// and namespace of kube-state-metrics itself (the object's own namespace
// label stays).
var ksm = [][2]string{
	{"container", "kube-rbac-proxy-main"}, {"instance", "$ip:8443"},
	{"job", "kube-state-metrics"}, {"prometheus", "monitoring/k8s"},
}

func with(base [][2]string, extra ...[2]string) [][2]string {
	out := append([][2]string{}, base...)
	return append(out, extra...)
}

// rules are alerts of the kubernetes-mixin and node-mixin, with the label
// sets they really carry.
var rules = []rule{
	{name: "KubePodCrashLooping", severity: "warning", target: "pod", group: "kubernetes",
		labels:      with(ksm, [2]string{"container", "$container"}, [2]string{"reason", "CrashLoopBackOff"}, [2]string{"uid", "$uid"}),
		summary:     "Pod is crash looping.",
		description: "Pod %s/%s (app) is in waiting state (reason: \"CrashLoopBackOff\")."},
	{name: "KubePodNotReady", severity: "warning", target: "pod", group: "kubernetes",
		labels:      with(ksm),
		summary:     "Pod has been in a non-ready state for more than 15 minutes.",
		description: "Pod %s/%s has been in a non-ready state for longer than 15 minutes on cluster ."},
	{name: "KubeContainerWaiting", severity: "warning", target: "pod", group: "kubernetes",
		labels:      with(ksm, [2]string{"container", "$container"}, [2]string{"reason", "ContainerCreating"}),
		summary:     "Pod container waiting longer than 1 hour",
		description: "pod/%[2]s in namespace %[1]s on container app has been in waiting state for longer than 1 hour."},
	{name: "CPUThrottlingHigh", severity: "info", target: "pod", group: "kubernetes",
		labels: [][2]string{{"container", "$container"}, {"endpoint", "https-metrics"}, {"instance", "$ip:10250"},
			{"job", "kubelet"}, {"metrics_path", "/metrics/cadvisor"}, {"node", "$node"}, {"prometheus", "monitoring/k8s"}, {"service", "kubelet"}},
		summary:     "Processes experience elevated CPU throttling.",
		description: "73.5%% throttling of CPU in namespace %s for container app in pod %s on cluster ."},
	{name: "KubeDeploymentReplicasMismatch", severity: "warning", target: "deployment", group: "kubernetes",
		labels:      with(ksm),
		summary:     "Deployment has not matched the expected number of replicas.",
		description: "Deployment %s/%s has not matched the expected number of replicas for longer than 15 minutes."},
	{name: "KubeStatefulSetReplicasMismatch", severity: "warning", target: "statefulset", group: "kubernetes",
		labels:      with(ksm),
		summary:     "StatefulSet has not matched the expected number of replicas.",
		description: "StatefulSet %s/%s has not matched the expected number of replicas for longer than 15 minutes."},
	{name: "KubeDaemonSetRolloutStuck", severity: "warning", target: "daemonset", group: "kubernetes",
		labels:      with(ksm),
		summary:     "DaemonSet rollout is stuck.",
		description: "DaemonSet %s/%s has not finished or progressed for at least 15m."},
	{name: "KubeJobFailed", severity: "warning", target: "job_name", group: "kubernetes",
		labels:      with(ksm, [2]string{"condition", "true"}),
		summary:     "Job failed to complete.",
		description: "Job %s/%s failed to complete. Removing failed job after investigation should clear this alert."},
	{name: "KubeHpaMaxedOut", severity: "warning", target: "horizontalpodautoscaler", group: "kubernetes",
		labels:      with(ksm),
		summary:     "HPA is running at max replicas",
		description: "HPA %s/%s has been running at max replicas for longer than 15 minutes."},
	{name: "KubePersistentVolumeFillingUp", severity: "critical", target: "persistentvolumeclaim", group: "kubernetes",
		labels: [][2]string{{"endpoint", "https-metrics"}, {"instance", "$ip:10250"}, {"job", "kubelet"}, {"metrics_path", "/metrics"},
			{"node", "$node"}, {"prometheus", "monitoring/k8s"}, {"service", "kubelet"}},
		summary:     "PersistentVolume is filling up.",
		description: "The PersistentVolume claimed by %[2]s in Namespace %[1]s is only 2.7%% free."},
	{name: "TargetDown", severity: "warning", target: "service", group: "general",
		labels:      [][2]string{{"job", "$obj"}, {"prometheus", "monitoring/k8s"}},
		summary:     "One or more targets are unreachable.",
		description: "100%% of the %[2]s/%[2]s targets in %[1]s namespace are down."},
	{name: "KubeNodeNotReady", severity: "warning", target: "node", clusterScoped: true, group: "kubernetes",
		labels:      with(ksm, [2]string{"condition", "Ready"}, [2]string{"status", "true"}),
		summary:     "Node is not ready.",
		description: "%[2]s has been unready for more than 15 minutes."},
	{name: "KubeletTooManyPods", severity: "info", target: "node", clusterScoped: true, group: "kubernetes",
		labels:      [][2]string{{"prometheus", "monitoring/k8s"}},
		summary:     "Kubelet is running at capacity.",
		description: "Kubelet '%[2]s' is running at 95.5%% of its Pod capacity."},
	{name: "NodeFilesystemSpaceFillingUp", severity: "warning", target: "pod", group: "node",
		labels: [][2]string{{"container", "node-exporter"}, {"device", "/dev/nvme0n1p1"}, {"endpoint", "https"},
			{"fstype", "ext4"}, {"instance", "$node"}, {"job", "node-exporter"}, {"mountpoint", "/"},
			{"prometheus", "monitoring/k8s"}, {"service", "node-exporter"}},
		summary:     "Filesystem is predicted to run out of space within the next 24 hours.",
		description: "Filesystem on /dev/nvme0n1p1, mounted on /, at %[2]s has only 14.2%% available space left and is filling up."},
	{name: "KubeMemoryOvercommit", severity: "warning", target: "", group: "kubernetes",
		labels:      [][2]string{{"prometheus", "monitoring/k8s"}},
		summary:     "Cluster has overcommitted memory resource requests.",
		description: "Cluster %[2]s has overcommitted memory resource requests for Pods by 3.2 bytes and cannot tolerate node failure."},
}

// namespaces and workloads name realistic objects.
var namespaces = []string{
	"payments", "checkout", "cart", "catalog", "search", "identity", "orders", "shipping", "billing", "notifications",
	"gateway", "analytics", "recommendations", "inventory", "media", "monitoring", "logging", "ingress-nginx", "cert-manager", "kube-system",
}

var workloads = []string{
	"api", "worker", "frontend", "consumer", "scheduler", "indexer", "cache", "web", "grpc-server", "batch",
	"migrator", "exporter", "proxy", "sidecar-injector", "controller",
}

// eventKind is one kind of Warning Event a cluster emits.
type eventKind struct {
	reason, kind, component, message string
}

var eventKinds = []eventKind{
	{"BackOff", "Pod", "kubelet", "Back-off restarting failed container app in pod %s_%s"},
	{"Unhealthy", "Pod", "kubelet", "Readiness probe failed: Get \"http://10.244.3.17:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers) (%s/%s)"},
	{"FailedScheduling", "Pod", "default-scheduler", "0/6 nodes are available: 3 Insufficient memory, 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/6 nodes are available (%s/%s)."},
	{"FailedMount", "Pod", "kubelet", "MountVolume.SetUp failed for volume \"config\" : configmap \"%s-%s-config\" not found"},
	{"FailedCreate", "ReplicaSet", "replicaset-controller", "Error creating: pods \"%[2]s-\" is forbidden: exceeded quota: compute-resources, requested: limits.memory=2Gi, used: limits.memory=15Gi, limited: limits.memory=16Gi (%[1]s)"},
	{"NodeNotReady", "Node", "node-controller", "Node %[2]s status is now: NodeNotReady"},
	{"SystemOOM", "Node", "kubelet", "System OOM encountered, victim process: java, pid: 48213 (%[2]s)"},
}
