//! deploy/ without a container engine: the compose file, the Kubernetes manifests,
//! the Dockerfile and the Railway files are loaded and checked against the
//! configuration table (docs/configuration.md) and the configured ports; every secret is referenced (compose
//! interpolation, `secretKeyRef`), never written into the files.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use messaging_grpc::{Config, Mode};
use serde::Deserialize as _;
use serde_norway::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every variable named in the first column of the configuration table
/// (docs/configuration.md).
fn documented_variables() -> BTreeSet<String> {
    let page = read("docs/configuration.md");
    let mut vars = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 && is_variable_name(part) {
                vars.insert(part.to_owned());
            }
        }
    }
    assert!(
        vars.len() > 40,
        "the configuration table was not found: {vars:?}"
    );
    vars
}

fn is_variable_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Variables whose values are secrets: never written into deploy/ files.
fn is_secret(name: &str) -> bool {
    const SECRETS: &[&str] = &[
        "DATABASE_URL",
        "MESSAGING_MASTER_KEYS",
        "JWT_HS256_SECRET",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY_SECRET",
        "MEDIA_URL_SECRET",
        "GATEWAY_SERVICE_TOKEN",
        "MESSAGING_ADMIN_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ];
    SECRETS.contains(&name)
        || ["PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY"]
            .iter()
            .any(|w| name.contains(w))
}

/// The default ports (Config with nothing set).
fn default_ports() -> (u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    let vars = HashMap::from([(
        "MESSAGING_DATA_DIR".to_owned(),
        dir.path().display().to_string(),
    )]);
    let config = Config::from_vars(&vars, Mode::Dev).unwrap();
    (config.grpc_addr.port(), config.gateway_addr.port())
}

/// The port at the end of `host:port` or of a URL's authority.
fn port_of(s: &str) -> u16 {
    let authority = s.split("://").last().unwrap().split('/').next().unwrap();
    authority
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {s}"))
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], Vec::as_slice)
}

#[test]
fn compose_file_sets_documented_variables_ports_and_references_secrets() {
    let documented = documented_variables();
    let (grpc_port, http_port) = default_ports();
    let mut compose: Value = serde_norway::from_str(&read("deploy/compose.yaml")).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().expect("services");
    for wanted in ["postgres", "minio", "otel-collector", "core", "gateway"] {
        assert!(services.contains_key(wanted), "compose has no {wanted}");
    }
    let env = |svc: &str| -> HashMap<String, String> {
        compose["services"][svc]["environment"]
            .as_mapping()
            .map(|m| m.iter().map(|(k, v)| (str_of(k), str_of(v))).collect())
            .unwrap_or_default()
    };
    for (name, svc) in services {
        let name = str_of(name);
        let ours = svc["image"].as_str() == Some("commpro-messaging:local");
        for (var, value) in env(&name) {
            if ours {
                assert!(
                    documented.contains(&var),
                    "compose service {name} sets {var}, which the configuration table (docs/configuration.md) does not list"
                );
            }
            if is_secret(&var) {
                assert!(
                    value.contains("${"),
                    "compose service {name}: {var} must reference a variable from deploy/.env, not hold a value"
                );
            }
        }
    }
    for svc in ["postgres", "minio", "core", "gateway"] {
        assert!(
            compose["services"][svc]["healthcheck"]["test"].is_sequence(),
            "compose service {svc} has no health check"
        );
    }
    let core = env("core");
    let gateway = env("gateway");
    assert_eq!(port_of(&core["MESSAGING_GRPC_ADDR"]), grpc_port);
    assert_eq!(port_of(&gateway["GATEWAY_HTTP_ADDR"]), http_port);
    assert_eq!(port_of(&gateway["MESSAGING_CORE_URL"]), grpc_port);
    assert!(
        seq(&compose["services"]["core"]["expose"])
            .iter()
            .any(|p| str_of(p) == grpc_port.to_string())
    );
    assert!(
        seq(&compose["services"]["gateway"]["ports"])
            .iter()
            .any(|p| str_of(p).ends_with(&format!(":{http_port}")))
    );
    let core_check = seq(&compose["services"]["core"]["healthcheck"]["test"])
        .iter()
        .map(str_of)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        core_check.contains(&format!(":{grpc_port}")),
        "{core_check}"
    );
    let gw_check = seq(&compose["services"]["gateway"]["healthcheck"]["test"])
        .iter()
        .map(str_of)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        gw_check.contains(&format!(":{http_port}/readyz")),
        "{gw_check}"
    );

    // Traces go to the collector's OTLP/gRPC port, as its config listens.
    let collector: Value = serde_norway::from_str(&read("deploy/otel-collector.yaml")).unwrap();
    let otlp_port = port_of(&str_of(get(
        &collector,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    )));
    for e in [&core, &gateway] {
        assert_eq!(port_of(&e["OTEL_EXPORTER_OTLP_ENDPOINT"]), otlp_port);
    }
    // S3 (MinIO) is where the core's media go.
    assert!(core["MEDIA_STORE"].starts_with("s3://"));
    assert_eq!(port_of(&core["AWS_ENDPOINT"]), 9000);
}

/// Every document of every manifest under deploy/k8s.
fn manifests() -> Vec<Value> {
    let mut docs = Vec::new();
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    get(v, &["metadata", "name"]).as_str().unwrap_or_default()
}

#[test]
fn kubernetes_manifests_set_documented_variables_ports_probes_and_reference_secrets() {
    let documented = documented_variables();
    let (grpc_port, http_port) = default_ports();
    let docs = manifests();
    assert!(
        docs.iter().all(|d| kind(d) != "Secret"),
        "Secrets are created outside the manifests, never written in them"
    );
    for cm in docs.iter().filter(|d| kind(d) == "ConfigMap") {
        for (k, _) in cm["data"].as_mapping().unwrap() {
            let k = str_of(k);
            assert!(
                documented.contains(&k),
                "ConfigMap sets {k}, not in docs/configuration.md"
            );
            assert!(!is_secret(&k), "ConfigMap holds the secret {k}");
        }
    }
    let deployments: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    let names: BTreeSet<&str> = deployments.iter().map(|d| name(d)).collect();
    assert_eq!(names, BTreeSet::from(["messaging-core", "webhook-gateway"]));
    let mut core_service_port = None;
    for d in &deployments {
        let dname = name(d);
        let pod = get(d, &["spec", "template", "spec"]);
        assert_eq!(
            get(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
            Some(true)
        );
        let containers = seq(&pod["containers"]);
        assert_eq!(containers.len(), 1, "{dname}");
        let c = &containers[0];
        let mut env = HashMap::new();
        for e in seq(&c["env"]) {
            let var = str_of(&e["name"]);
            assert!(
                documented.contains(&var),
                "{dname} sets {var}, which the configuration table (docs/configuration.md) does not list"
            );
            if is_secret(&var) {
                assert!(
                    e.get("value").is_none()
                        && get(e, &["valueFrom", "secretKeyRef", "name"]).is_string()
                        && get(e, &["valueFrom", "secretKeyRef", "key"]).is_string(),
                    "{dname}: {var} must come from a Secret (valueFrom.secretKeyRef)"
                );
            }
            if let Some(v) = e.get("value") {
                env.insert(var, str_of(v));
            }
        }
        let container_ports: Vec<u16> = seq(&c["ports"])
            .iter()
            .map(|p| p["containerPort"].as_u64().unwrap() as u16)
            .collect();
        let (addr_var, port) = if dname == "messaging-core" {
            ("MESSAGING_GRPC_ADDR", grpc_port)
        } else {
            ("GATEWAY_HTTP_ADDR", http_port)
        };
        assert_eq!(port_of(&env[addr_var]), port, "{dname} {addr_var}");
        // The core's probes go to its metrics port (the kubelet's gRPC probe cannot
        // speak TLS); the gateway's to its own.
        let probed = if dname == "messaging-core" {
            let metrics = port_of(&env["MESSAGING_METRICS_ADDR"]);
            assert_eq!(
                container_ports,
                vec![port, metrics],
                "{dname} containerPort"
            );
            metrics
        } else {
            assert_eq!(container_ports, vec![port], "{dname} containerPort");
            port
        };
        for probe in ["readinessProbe", "livenessProbe"] {
            let p = &c[probe];
            assert!(
                p.get("grpc").is_none(),
                "{dname} {probe}: a gRPC probe cannot reach a TLS port"
            );
            let probe_port = get(p, &["httpGet", "port"]).as_u64();
            assert_eq!(probe_port, Some(u64::from(probed)), "{dname} {probe}");
        }
        if dname == "webhook-gateway" {
            assert_eq!(port_of(&env["MESSAGING_CORE_URL"]), grpc_port);
        }
        let service_port = |p: &Value| p["targetPort"].as_u64() == Some(u64::from(port));
        // A Service, a PodDisruptionBudget and an autoscaler for each Deployment.
        let labels = get(d, &["spec", "selector", "matchLabels"]);
        let service = docs
            .iter()
            .find(|s| kind(s) == "Service" && get(s, &["spec", "selector"]) == labels)
            .unwrap_or_else(|| panic!("no Service selects {dname}"));
        for p in seq(get(service, &["spec", "ports"])) {
            assert!(
                container_ports.contains(&(p["targetPort"].as_u64().unwrap() as u16)),
                "Service of {dname} targets a port the container does not open"
            );
            if dname == "messaging-core" && service_port(p) {
                core_service_port = p["port"].as_u64();
            }
        }
        assert!(docs.iter().any(|p| kind(p) == "PodDisruptionBudget"
            && get(p, &["spec", "selector", "matchLabels"]) == labels));
        assert!(docs.iter().any(|h| kind(h) == "HorizontalPodAutoscaler"
            && get(h, &["spec", "scaleTargetRef", "name"]).as_str() == Some(dname)));
    }
    assert_eq!(core_service_port, Some(u64::from(grpc_port)));
}

/// The Deployment `dname`'s container, its plain env values, and where each of its
/// volumes (by name) is mounted, with the Secret behind it.
fn container_of<'a>(
    docs: &'a [Value],
    dname: &str,
) -> (&'a Value, HashMap<String, String>, Vec<(String, String)>) {
    let d = docs
        .iter()
        .find(|d| kind(d) == "Deployment" && name(d) == dname)
        .unwrap_or_else(|| panic!("no Deployment {dname}"));
    let pod = get(d, &["spec", "template", "spec"]);
    let c = &seq(&pod["containers"])[0];
    let env = seq(&c["env"])
        .iter()
        .filter_map(|e| Some((str_of(&e["name"]), str_of(e.get("value")?))))
        .collect();
    let secret_of = |volume: &str| {
        seq(&pod["volumes"])
            .iter()
            .find(|v| str_of(&v["name"]) == volume)
            .and_then(|v| get(v, &["secret", "secretName"]).as_str())
            .map(str::to_owned)
    };
    let mounts = seq(&c["volumeMounts"])
        .iter()
        .filter_map(|m| {
            let secret = secret_of(&str_of(&m["name"]))?;
            Some((str_of(&m["mountPath"]), secret))
        })
        .collect();
    (c, env, mounts)
}

/// The Secret mounted where `path` is, if `path` is under a mounted Secret.
fn secret_behind(mounts: &[(String, String)], path: &str) -> Option<String> {
    mounts
        .iter()
        .find(|(dir, _)| path.starts_with(&format!("{}/", dir.trim_end_matches('/'))))
        .map(|(_, secret)| secret.clone())
}

#[test]
fn kubernetes_gateway_reaches_the_core_over_mutual_tls() {
    let docs = manifests();
    let (_, core_env, core_mounts) = container_of(&docs, "messaging-core");
    for var in [
        "MESSAGING_GRPC_TLS_CERT",
        "MESSAGING_GRPC_TLS_KEY",
        "MESSAGING_GRPC_TLS_CLIENT_CA",
    ] {
        let path = core_env
            .get(var)
            .unwrap_or_else(|| panic!("the core sets no {var}: its gRPC port is plaintext"));
        assert!(
            secret_behind(&core_mounts, path).is_some(),
            "the core's {var} ({path}) is not in a mounted Secret"
        );
    }
    let (_, gw_env, gw_mounts) = container_of(&docs, "webhook-gateway");
    let core_url = &gw_env["MESSAGING_CORE_URL"];
    assert!(
        core_url.starts_with("https://"),
        "the gateway calls the core in plaintext: {core_url}"
    );
    // The name the gateway checks the core's certificate for is the core's Service.
    let host = core_url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap();
    let service_names: Vec<&str> = docs
        .iter()
        .filter(|d| kind(d) == "Service")
        .map(name)
        .collect();
    assert!(service_names.contains(&host), "{host} is not a Service");
    for var in [
        "GATEWAY_CORE_TLS_CA",
        "GATEWAY_CORE_TLS_CERT",
        "GATEWAY_CORE_TLS_KEY",
    ] {
        let path = gw_env
            .get(var)
            .unwrap_or_else(|| panic!("the gateway sets no {var}"));
        assert!(
            secret_behind(&gw_mounts, path).is_some(),
            "the gateway's {var} ({path}) is not in a mounted Secret"
        );
    }
    // Each side has its own key: the gateway never holds the core's.
    assert_ne!(
        secret_behind(&core_mounts, &core_env["MESSAGING_GRPC_TLS_KEY"]),
        secret_behind(&gw_mounts, &gw_env["GATEWAY_CORE_TLS_KEY"])
    );
    // The Service no longer declares cleartext HTTP/2.
    let core_service = docs
        .iter()
        .find(|d| kind(d) == "Service" && name(d) == "messaging-core")
        .unwrap();
    for p in seq(get(core_service, &["spec", "ports"])) {
        assert_ne!(p["appProtocol"].as_str(), Some("kubernetes.io/h2c"));
    }
}

#[test]
fn dockerfile_builds_both_binaries_runs_as_non_root_with_a_health_check() {
    let (grpc_port, http_port) = default_ports();
    let dockerfile = read("deploy/Dockerfile");
    let from = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(from >= 2, "a multi-stage build");
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(dockerfile.contains("\nHEALTHCHECK "));
    let copy = dockerfile
        .lines()
        .find(|l| l.starts_with("COPY --from=build") && l.ends_with(" /usr/local/bin/"))
        .expect("the binaries copied into the runtime image");
    for bin in ["/messaging ", "/webhook-gateway "] {
        assert!(copy.contains(bin), "{copy}");
    }
    assert!(dockerfile.contains(&format!("EXPOSE {grpc_port} {http_port}")));
    assert!(dockerfile.contains(&format!("MESSAGING_GRPC_ADDR=0.0.0.0:{grpc_port}")));
    assert!(dockerfile.contains(&format!("GATEWAY_HTTP_ADDR=0.0.0.0:{http_port}")));
}

#[test]
fn railway_files_build_the_dockerfile_and_start_each_service() {
    for (file, bin) in [
        ("deploy/railway.toml", "/usr/local/bin/messaging serve"),
        (
            "deploy/railway.gateway.toml",
            "/usr/local/bin/webhook-gateway",
        ),
    ] {
        let t: toml::Table = read(file).parse().unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(t["build"]["builder"].as_str(), Some("DOCKERFILE"), "{file}");
        let dockerfile = t["build"]["dockerfilePath"].as_str().unwrap();
        assert!(repo().join(dockerfile).is_file(), "{file}: {dockerfile}");
        assert_eq!(t["deploy"]["startCommand"].as_str(), Some(bin), "{file}");
        assert_eq!(
            t["deploy"]["restartPolicyType"].as_str(),
            Some("ON_FAILURE")
        );
    }
    let gw: toml::Table = read("deploy/railway.gateway.toml").parse().unwrap();
    assert_eq!(gw["deploy"]["healthcheckPath"].as_str(), Some("/readyz"));
}
