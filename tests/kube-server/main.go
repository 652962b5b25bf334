// kube-server runs a real Kubernetes API server for wiform's tests: etcd (embedded, from
// go.etcd.io/etcd/server/v3) and kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver) in one
// process, configured the way a real cluster is: RBAC, static bearer tokens, a CA-signed serving
// certificate, a service-account signing key and an https issuer whose OIDC discovery documents
// are readable anonymously, and TokenRequest.
//
// Usage: kube-server -dir DIR
//
// It picks free ports on 127.0.0.1, writes its PKI, token file and kubeconfig under DIR, starts
// etcd and the API server, bootstraps the RBAC a managed cluster has (anonymous OIDC discovery,
// a read-only user), and then writes DIR/ready.json. It exits when its parent process exits, so
// a test run that ends (or is killed) leaves nothing behind.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// Ready is what the harness reads from ready.json.
type Ready struct {
	Server      string `json:"server"`
	Issuer      string `json:"issuer"`
	CA          string `json:"ca_file"`
	Kubeconfig  string `json:"kubeconfig"`
	AdminToken  string `json:"admin_token"`
	ReaderToken string `json:"reader_token"`
	EtcdURL     string `json:"etcd_url"`
	PID         int    `json:"pid"`
}

func main() {
	dir := flag.String("dir", "", "directory for PKI, data, kubeconfig and ready.json")
	flag.Parse()
	if *dir == "" {
		fail("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fail("cannot create %s: %v", *dir, err)
	}
	go exitWithParent()

	apiPort, etcdPort, peerPort := freePort(), freePort(), freePort()
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	p := func(name string) string { return filepath.Join(*dir, name) }

	caCert, caKey := writeCA(p("ca.crt"))
	writeServingCert(p("apiserver.crt"), p("apiserver.key"), caCert, caKey)
	writeServiceAccountKey(p("sa.key"), p("sa.pub"))
	adminToken, readerToken := randomToken(), randomToken()
	mustWrite(p("tokens.csv"), fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n%s,reader,reader-uid,\n", adminToken, readerToken), 0o600)
	writeKubeconfig(p("kubeconfig"), server, p("ca.crt"), adminToken, readerToken)

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	etcd := startEtcd(p("etcd"), etcdPort, peerPort)
	defer etcd.Close()

	os.Args = []string{
		"kube-apiserver",
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file=" + p("apiserver.crt"),
		"--tls-private-key-file=" + p("apiserver.key"),
		"--cert-dir=" + p("certs"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--token-auth-file=" + p("tokens.csv"),
		"--service-account-issuer=" + server,
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	}
	go bootstrap(server, p("ca.crt"), adminToken, func() {
		ready := Ready{Server: server, Issuer: server, CA: p("ca.crt"), Kubeconfig: p("kubeconfig"), AdminToken: adminToken, ReaderToken: readerToken, EtcdURL: etcdURL, PID: os.Getpid()}
		data, _ := json.MarshalIndent(ready, "", "  ")
		mustWrite(p("ready.json.tmp"), string(data), 0o600)
		if err := os.Rename(p("ready.json.tmp"), p("ready.json")); err != nil {
			fail("cannot write ready.json: %v", err)
		}
	})
	code := cli.Run(app.NewAPIServerCommand())
	etcd.Close()
	os.Exit(code)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kube-server: "+format+"\n", args...)
	os.Exit(1)
}

// exitWithParent ends this process when the test binary that started it is gone.
func exitWithParent() {
	parent := os.Getppid()
	for {
		time.Sleep(250 * time.Millisecond)
		if os.Getppid() != parent {
			os.Exit(0)
		}
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func mustWrite(path, content string, mode os.FileMode) {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		fail("cannot write %s: %v", path, err)
	}
}

func writePEM(path, kind string, der []byte, mode os.FileMode) {
	mustWrite(path, string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})), mode)
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		fail("no randomness: %v", err)
	}
	return hex.EncodeToString(b)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func writeCA(path string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("ca key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "wiform test cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		fail("ca cert: %v", err)
	}
	writePEM(path, "CERTIFICATE", der, 0o644)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func writeServingCert(certPath, keyPath string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("serving key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		fail("serving cert: %v", err)
	}
	writePEM(certPath, "CERTIFICATE", der, 0o644)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writePEM(keyPath, "EC PRIVATE KEY", keyDER, 0o600)
}

// RSA, because Entra accepts only RS256 service-account tokens.
func writeServiceAccountKey(keyPath, pubPath string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fail("service account key: %v", err)
	}
	writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writePEM(pubPath, "PUBLIC KEY", pub, 0o644)
}

func writeKubeconfig(path, server, caFile, adminToken, readerToken string) {
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kube-server
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
- name: reader
  user:
    token: %s
contexts:
- name: kube-server
  context:
    cluster: kube-server
    user: admin
- name: kube-server-reader
  context:
    cluster: kube-server
    user: reader
current-context: kube-server
`, server, caFile, adminToken, readerToken)
	mustWrite(path, config, 0o600)
}

func startEtcd(dir string, clientPort, peerPort int) *embed.Etcd {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "kube-server"
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peer.String())
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fail("etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fail("etcd did not become ready")
	}
	return e
}

// bootstrap waits for /readyz, then creates what a managed cluster has and the tests need.
func bootstrap(server, caFile, adminToken string, ready func()) {
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequest("GET", server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			fail("kube-apiserver did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: server, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}})
	if err != nil {
		fail("client: %v", err)
	}
	ctx := context.Background()
	// Managed clusters let anyone read the issuer's discovery documents; Entra fetches them
	// without credentials.
	create(ctx, kube, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "service-account-issuer-discovery-unauthenticated"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "system:unauthenticated"}},
	})
	// The limited user: read namespaces and service accounts, nothing else.
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "wiform-test-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces", "serviceaccounts"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		fail("reader role: %v", err)
	}
	create(ctx, kube, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "wiform-test-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "wiform-test-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "reader"}},
	})
	ready()
}

func create(ctx context.Context, kube *kubernetes.Clientset, binding *rbacv1.ClusterRoleBinding) {
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		fail("cluster role binding %s: %v", binding.Name, err)
	}
}
