//! One throwaway control plane on loopback: etcd, kube-apiserver (RBAC, audit log) and
//! kube-controller-manager, with its certificates, state and logs in a private folder.
//!
//! The processes end with the control plane ([`Drop`]) and, should the test process die without running
//! destructors (a test binary's statics never drop), a small watchdog shell stops them once the test process
//! is gone.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use super::ClusterError;
use super::binaries;

/// The processes of a control plane, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Etcd,
    ApiServer,
    ControllerManager,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Etcd => "etcd",
            Role::ApiServer => "kube-apiserver",
            Role::ControllerManager => "kube-controller-manager",
        }
    }
}

/// A running control plane.
pub struct ControlPlane {
    /// Its folder: certificates, etcd data, logs, kubeconfig, audit log.
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The etcd client URL (for compaction).
    pub etcd: String,
    bin: PathBuf,
    api_args: Vec<String>,
    processes: Mutex<Vec<(Role, Child)>>,
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| ClusterError::Start(format!("no free port: {e}")))?;
    Ok(listener.local_addr().map_err(|e| ClusterError::Start(format!("no local address: {e}")))?.port())
}

fn write(path: &Path, content: impl AsRef<[u8]>) -> Result<(), ClusterError> {
    fs::write(path, content).map_err(|e| ClusterError::Start(format!("writing {}: {e}", path.display())))
}

fn cert_error(e: rcgen::Error) -> ClusterError {
    ClusterError::Start(format!("certificates: {e}"))
}

/// Writes the CA, the admin client certificate (`system:masters`, an X.509 v3 certificate: rustls refuses
/// v1 client certificates) and the service-account signing key.
fn write_certificates(certs: &Path) -> Result<(), ClusterError> {
    let ca_key = KeyPair::generate().map_err(cert_error)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "cma-test-ca");
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_error)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), &ca_key).map_err(cert_error)?;

    let admin_key = KeyPair::generate().map_err(cert_error)?;
    let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    admin.distinguished_name.push(DnType::CommonName, "admin");
    admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(cert_error)?;

    let sa_key = KeyPair::generate().map_err(cert_error)?;
    write(&certs.join("ca.crt"), ca_cert.pem())?;
    write(&certs.join("admin.crt"), admin_cert.pem())?;
    write(&certs.join("admin.key"), admin_key.serialize_pem())?;
    write(&certs.join("sa.key"), sa_key.serialize_pem())?;
    write(&certs.join("sa.pub"), sa_key.public_key_pem())?;
    Ok(())
}

const AUDIT_POLICY: &str =
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\"]\nrules:\n- level: Metadata\n";

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager in a new folder under `parent`.
    pub fn start(parent: &Path) -> Result<ControlPlane, ClusterError> {
        let bin = binaries::locate()?;
        let dir = tempfile::Builder::new()
            .prefix("cma-k8s-")
            .tempdir_in(parent)
            .map_err(|e| ClusterError::Start(format!("a folder in {}: {e}", parent.display())))?
            .keep();
        let certs = dir.join("certs");
        fs::create_dir_all(&certs).map_err(|e| ClusterError::Start(format!("{}: {e}", certs.display())))?;
        write_certificates(&certs)?;
        write(&dir.join("audit-policy.yaml"), AUDIT_POLICY)?;

        let (etcd_client, etcd_peer, api) = (free_port()?, free_port()?, free_port()?);
        let etcd = format!("http://127.0.0.1:{etcd_client}");
        let server = format!("https://127.0.0.1:{api}");
        let root = dir.clone();
        let p = |name: &str| root.join(name).display().to_string();
        let api_args = vec![
            format!("--etcd-servers={etcd}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api}"),
            format!("--cert-dir={}", p("certs/serving")),
            format!("--client-ca-file={}", p("certs/ca.crt")),
            format!("--service-account-key-file={}", p("certs/sa.pub")),
            format!("--service-account-signing-key-file={}", p("certs/sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--authorization-mode=RBAC".into(),
            // The test node's Hostname address resolves nowhere; its InternalIP (127.0.0.1) is where the test
            // kubelet serves logs. The default order puts Hostname first; this is the order kubeadm sets.
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
            format!("--audit-log-path={}", p("audit.log")),
            format!("--audit-policy-file={}", p("audit-policy.yaml")),
            // Audit events are written as requests complete, so a test can read its own requests at once.
            "--audit-log-mode=blocking".into(),
        ];
        write(
            &dir.join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: test, cluster: {{server: \"{server}\", certificate-authority: {ca}}}}}]\n\
                 users: [{{name: admin, user: {{client-certificate: {crt}, client-key: {key}}}}}]\n\
                 contexts: [{{name: test, context: {{cluster: test, user: admin}}}}]\ncurrent-context: test\n",
                ca = p("certs/serving/apiserver.crt"),
                crt = p("certs/admin.crt"),
                key = p("certs/admin.key"),
            ),
        )?;
        let plane = ControlPlane { dir, server, etcd, bin, api_args, processes: Mutex::new(Vec::new()) };
        plane.watchdog()?;
        plane.spawn(
            Role::Etcd,
            &[
                format!("--data-dir={}", p("etcd")),
                format!("--listen-client-urls={}", plane.etcd),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            ],
        )?;
        plane.wait_for_etcd()?;
        plane.spawn(Role::ApiServer, &plane.api_args)?;
        plane.wait_for_serving_certificate()?;
        Ok(plane)
    }

    /// Starts the controller manager (once the API server is ready: it gives up early otherwise).
    pub fn start_controller_manager(&self) -> Result<(), ClusterError> {
        let kcm_port = free_port()?;
        let kubeconfig = self.kubeconfig().display().to_string();
        let p = |name: &str| self.dir.join(name).display().to_string();
        self.spawn(
            Role::ControllerManager,
            &[
                format!("--kubeconfig={kubeconfig}"),
                format!("--authentication-kubeconfig={kubeconfig}"),
                format!("--authorization-kubeconfig={kubeconfig}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={kcm_port}"),
                "--leader-elect=false".into(),
                "--use-service-account-credentials=false".into(),
                format!("--service-account-private-key-file={}", p("certs/sa.key")),
                format!("--root-ca-file={}", p("certs/ca.crt")),
                // No node IPAM or node lifecycle: there are no real nodes.
                "--controllers=*,-nodeipam,-nodelifecycle".into(),
            ],
        )
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The audit log (every request, Metadata level).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn spawn(&self, role: Role, args: &[String]) -> Result<(), ClusterError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", role.name())))
            .map_err(|e| ClusterError::Start(format!("{} log: {e}", role.name())))?;
        let err = log.try_clone().map_err(|e| ClusterError::Start(format!("{} log: {e}", role.name())))?;
        let child = Command::new(self.bin.join(role.name()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| ClusterError::Start(format!("starting {}: {e}", role.name())))?;
        write(&self.dir.join(format!("{}.pid", role.name())), child.id().to_string())?;
        self.processes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((role, child));
        Ok(())
    }

    /// Stops the processes when the test process is gone without dropping this value.
    fn watchdog(&self) -> Result<(), ClusterError> {
        let dir = self.dir.display().to_string();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for f in '{dir}'/*.pid; do kill $(cat \"$f\") 2>/dev/null; done; sleep 3; \
             for f in '{dir}'/*.pid; do kill -9 $(cat \"$f\") 2>/dev/null; done; rm -rf '{dir}'",
            pid = std::process::id()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| ClusterError::Start(format!("starting the watchdog: {e}")))
    }

    fn wait_for_etcd(&self) -> Result<(), ClusterError> {
        let address = self.etcd.trim_start_matches("http://").to_string();
        for _ in 0..100 {
            if std::net::TcpStream::connect(&address).is_ok() {
                return Ok(());
            }
            self.check_alive(Role::Etcd)?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(self.failure(Role::Etcd, "did not listen within 10 s"))
    }

    fn wait_for_serving_certificate(&self) -> Result<(), ClusterError> {
        let cert = self.dir.join("certs/serving/apiserver.crt");
        for _ in 0..300 {
            if cert.is_file() && fs::read_to_string(&cert).is_ok_and(|c| c.contains("END CERTIFICATE")) {
                return Ok(());
            }
            self.check_alive(Role::ApiServer)?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(self.failure(Role::ApiServer, "wrote no serving certificate within 30 s"))
    }

    /// An error about the API server, with the end of its log.
    pub(super) fn api_server_failure(&self, what: &str) -> ClusterError {
        self.failure(Role::ApiServer, what)
    }

    fn check_alive(&self, role: Role) -> Result<(), ClusterError> {
        let mut processes = self.processes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (r, child) in processes.iter_mut() {
            if *r == role
                && let Ok(Some(status)) = child.try_wait()
            {
                drop(processes);
                return Err(self.failure(role, &format!("exited ({status})")));
            }
        }
        Ok(())
    }

    /// An error naming `role`, with the end of its log.
    pub(super) fn failure(&self, role: Role, what: &str) -> ClusterError {
        let name = role.name();
        let log = fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        ClusterError::Start(format!("{name} {what}; last log lines:\n{}", tail.join("\n")))
    }

    /// Sends `signal` (`STOP`, `CONT`) to the controller manager.
    pub fn signal_controller_manager(&self, signal: &str) -> Result<(), ClusterError> {
        let processes = self.processes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (role, child) in processes.iter().filter(|(role, _)| *role == Role::ControllerManager) {
            let status = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                return Err(ClusterError::Start(format!("kill -{signal} {} (pid {}) failed", role.name(), child.id())));
            }
        }
        Ok(())
    }

    /// Stops the API server (SIGTERM, then SIGKILL after 5 s).
    pub fn stop_api_server(&self) {
        self.stop(Role::ApiServer);
    }

    /// Starts the API server again with the same flags, ports and certificates.
    pub fn start_api_server(&self) -> Result<(), ClusterError> {
        self.spawn(Role::ApiServer, &self.api_args)
    }

    fn stop(&self, role: Role) {
        let mut processes = self.processes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut stopping, kept): (Vec<_>, Vec<_>) = processes.drain(..).partition(|(r, _)| *r == role);
        *processes = kept;
        drop(processes);
        for (_, child) in &mut stopping {
            terminate(child);
        }
        let _ = fs::remove_file(self.dir.join(format!("{}.pid", role.name())));
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL.
fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").arg(&pid).stdout(Stdio::null()).stderr(Stdio::null()).status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for role in [Role::ControllerManager, Role::ApiServer, Role::Etcd] {
            self.stop(role);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
