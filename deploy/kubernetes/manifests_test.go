// Package kubernetes holds example manifests; its test decodes them with the
// Kubernetes API types and checks what a typo would break.
package kubernetes

import (
	"bytes"
	"fmt"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/pgguard/pgguard/policy"
)

// objects are the decoded documents of one manifest file, by kind.
type objects struct {
	configMaps []*corev1.ConfigMap
	jobs       []*batchv1.Job
	deploys    []*appsv1.Deployment
	services   []*corev1.Service
	pdbs       []*policyv1.PodDisruptionBudget
}

// decode reads every YAML document of a file strictly: an unknown or
// misplaced field is an error, as kubectl apply --validate=strict has it.
func decode(t *testing.T, file string) *objects {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	o := &objects{}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s document %d: %v", file, i+1, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
			o.configMaps = append(o.configMaps, obj.(*corev1.ConfigMap))
		case "batch/v1 Job":
			obj = &batchv1.Job{}
			o.jobs = append(o.jobs, obj.(*batchv1.Job))
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
			o.deploys = append(o.deploys, obj.(*appsv1.Deployment))
		case "v1 Service":
			obj = &corev1.Service{}
			o.services = append(o.services, obj.(*corev1.Service))
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
			o.pdbs = append(o.pdbs, obj.(*policyv1.PodDisruptionBudget))
		default:
			t.Fatalf("%s document %d: %s %s is not checked by this test; add it", file, i+1, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", file, i+1, meta.Kind, err)
		}
	}
	return o
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// repo holds facts the manifests must agree with, read from the repository.
type repo struct {
	image      string   // the Makefile's IMAGE, which the Dockerfile documents
	adminPaths []string // paths the admin server serves (cmd/pgguard/admin.go)
}

func readRepo(t *testing.T) repo {
	t.Helper()
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("the Makefile defines no IMAGE")
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dockerfile, m[1]) {
		t.Fatalf("the Dockerfile does not document the image %s", m[1])
	}
	admin, err := os.ReadFile("../../cmd/pgguard/admin.go")
	if err != nil {
		t.Fatal(err)
	}
	r := repo{image: string(m[1])}
	for _, p := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([^"]+)"`).FindAllSubmatch(admin, -1) {
		r.adminPaths = append(r.adminPaths, string(p[1]))
	}
	if !slices.Contains(r.adminPaths, "/readiness") {
		t.Fatalf("found no /readiness in cmd/pgguard/admin.go (paths: %v): has the admin server moved?", r.adminPaths)
	}
	return r
}

// flags turns a container's args (--name=value) into a map.
func flags(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	f := map[string]string{}
	for _, a := range c.Args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("container %s: arg %q is not --name=value", c.Name, a)
			continue
		}
		f[name] = value
	}
	return f
}

// checkPgguard checks what every pgguard container must have, and returns
// its flags.
func checkPgguard(t *testing.T, r repo, c corev1.Container, pod corev1.PodSpec, cms []*corev1.ConfigMap, probes map[string]*corev1.Probe) map[string]string {
	t.Helper()
	f := flags(t, c)

	// The image is the one `make image` builds, pinned.
	name, tag, _ := strings.Cut(c.Image, ":")
	if name != r.image || tag == "" || tag == "latest" {
		t.Errorf("image %s, want %s:<version>", c.Image, r.image)
	}

	// Probes: existing admin paths, on the admin port, which the kubelet
	// reaches (the pod's IP, so not 127.0.0.1).
	host, port, err := net.SplitHostPort(f["admin"])
	if err != nil || (host != "0.0.0.0" && host != "") {
		t.Errorf("--admin=%s: want 0.0.0.0:<port> so the kubelet can probe it", f["admin"])
	}
	for want, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe (HTTP GET %s)", want, want)
			continue
		}
		if p.HTTPGet.Path != want || !slices.Contains(r.adminPaths, p.HTTPGet.Path) {
			t.Errorf("probe path %s, want %s (the admin server serves %v)", p.HTTPGet.Path, want, r.adminPaths)
		}
		if got := containerPort(c, p.HTTPGet.Port); fmt.Sprint(got) != port {
			t.Errorf("probe %s on port %v (%d), but --admin listens on %s", want, p.HTTPGet.Port.String(), got, port)
		}
	}

	// Rules: --rules is a file of a ConfigMap mounted read-only.
	dir, file := path.Split(f["rules"])
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == path.Clean(dir) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("--rules=%s is not in a read-only volume mount of %s", f["rules"], c.Name)
	}
	var cm *corev1.ConfigMap
	for _, v := range pod.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil {
			for _, m := range cms {
				if m.Name == v.ConfigMap.Name {
					cm = m
				}
			}
		}
	}
	if cm == nil {
		t.Fatalf("volume %s is not a ConfigMap defined next to it", mount.Name)
	}
	rules, ok := cm.Data[file]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (--rules=%s); keys: %v", cm.Name, file, f["rules"], keys(cm.Data))
	}
	// And it is a valid rules file.
	tmp := filepath.Join(t.TempDir(), file)
	os.WriteFile(tmp, []byte(rules), 0o644)
	cfg, err := policy.LoadConfig(tmp)
	if err == nil {
		_, err = policy.NewEngine(cfg)
	}
	if err != nil {
		t.Errorf("ConfigMap %s key %s is not a valid rules file: %v", cm.Name, file, err)
	}

	// Locked down.
	sc := c.SecurityContext
	nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
		(pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
	if !nonRoot {
		t.Error("pgguard may run as root: set runAsNonRoot")
	}
	if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Error("runAsUser 0 is root (and contradicts runAsNonRoot)")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("pgguard's securityContext lacks readOnlyRootFilesystem, allowPrivilegeEscalation: false or drop ALL")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("pgguard has no CPU and memory requests and memory limit")
	}

	// The grace period covers the drain.
	delay, err := time.ParseDuration(f["max-sigterm-delay"])
	if err != nil {
		t.Errorf("--max-sigterm-delay=%q: %v", f["max-sigterm-delay"], err)
	} else if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= delay {
		t.Errorf("terminationGracePeriodSeconds %v does not cover --max-sigterm-delay=%s", g, delay)
	}
	return f
}

// containerPort resolves a probe's port, by number or by name.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// pgguard as a native sidecar of a migration Job.
func TestMigrationJobSidecar(t *testing.T) {
	t.Parallel()
	r := readRepo(t)
	o := decode(t, "migration-job.yaml")
	if len(o.jobs) != 1 {
		t.Fatalf("%d Jobs, want 1", len(o.jobs))
	}
	pod := o.jobs[0].Spec.Template.Spec
	var guard *corev1.Container
	for i := range pod.InitContainers {
		if pod.InitContainers[i].Name == "pgguard" {
			guard = &pod.InitContainers[i]
		}
	}
	if guard == nil {
		t.Fatal("no init container named pgguard")
	}
	// A native sidecar: without restartPolicy Always the Job would wait for
	// pgguard to exit before starting the migration.
	if guard.RestartPolicy == nil || *guard.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("pgguard has restartPolicy %s, want Always (a native sidecar)", policyName(guard.RestartPolicy))
	}
	if guard.ReadinessProbe != nil {
		t.Error("a readinessProbe on a sidecar of a Job serves nothing")
	}
	f := checkPgguard(t, r, *guard, pod, o.configMaps, map[string]*corev1.Probe{"/startup": guard.StartupProbe, "/liveness": guard.LivenessProbe})
	if host, _, _ := net.SplitHostPort(f["listen"]); host != "127.0.0.1" {
		t.Errorf("--listen=%s: a sidecar should listen on 127.0.0.1 only", f["listen"])
	}
	// The migration goes through pgguard.
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the migration", len(pod.Containers))
	}
	var url string
	for _, e := range pod.Containers[0].Env {
		if e.Name == "DATABASE_URL" {
			url = e.Value
		}
	}
	if !strings.Contains(url, "@"+f["listen"]+"/") {
		t.Errorf("DATABASE_URL %q does not point at pgguard (%s)", url, f["listen"])
	}
}

// One pgguard Deployment shared by many Jobs, behind a Service.
func TestSharedGuard(t *testing.T) {
	t.Parallel()
	r := readRepo(t)
	o := decode(t, "shared-guard.yaml")
	if len(o.deploys) != 1 || len(o.services) != 1 || len(o.pdbs) != 1 {
		t.Fatalf("%d Deployments, %d Services, %d PodDisruptionBudgets; want 1 each", len(o.deploys), len(o.services), len(o.pdbs))
	}
	d := o.deploys[0]
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want pgguard", len(pod.Containers))
	}
	c := pod.Containers[0]
	f := checkPgguard(t, r, c, pod, o.configMaps, map[string]*corev1.Probe{
		"/startup": c.StartupProbe, "/readiness": c.ReadinessProbe, "/liveness": c.LivenessProbe})
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: connections still routed to a terminating pod would be refused")
	} else if g := pod.TerminationGracePeriodSeconds; g != nil {
		delay, _ := time.ParseDuration(f["max-sigterm-delay"])
		if time.Duration(*g-c.Lifecycle.PreStop.Sleep.Seconds)*time.Second <= delay {
			t.Errorf("terminationGracePeriodSeconds %d minus the preStop sleep does not cover --max-sigterm-delay=%s", *g, delay)
		}
	}

	// The Service reaches the pods on the port pgguard listens on.
	labels := d.Spec.Template.Labels
	for k, v := range d.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match its pods", k, v)
		}
	}
	svc := o.services[0]
	for k, v := range svc.Spec.Selector {
		if labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pods", k, v)
		}
	}
	_, listenPort, _ := net.SplitHostPort(f["listen"])
	found := false
	for _, p := range svc.Spec.Ports {
		if fmt.Sprint(containerPort(c, p.TargetPort)) == listenPort {
			found = true
		}
	}
	if !found {
		t.Errorf("no Service port targets --listen=%s", f["listen"])
	}
	for k, v := range o.pdbs[0].Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("PodDisruptionBudget selector %s=%s does not match the pods", k, v)
		}
	}
}

// Every manifest here is checked by a test above.
func TestEveryManifestIsChecked(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.yaml")
	slices.Sort(files)
	if want := []string{"migration-job.yaml", "shared-guard.yaml"}; !slices.Equal(files, want) {
		t.Errorf("manifests %v, tests cover %v", files, want)
	}
}

func policyName(p *corev1.ContainerRestartPolicy) string {
	if p == nil {
		return "unset"
	}
	return string(*p)
}
