//! Config layering and validation: every error names the key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_load_and_bind_loopback() {
    let c = Config::load(None, &env(&[]), &CliOverrides::default()).unwrap();
    assert_eq!(c.server.host, "127.0.0.1");
    assert_eq!(c.server.port, 8080);
    assert!(c.binds_loopback());
    assert_eq!(c.database_url(), "sqlite://./data/integr8s.db");
}

#[test]
fn layers_apply_in_order_file_env_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[server]\nport = 9001\nhost = \"0.0.0.0\"\n[execution]\nmax_concurrent = 7\n",
    )
    .unwrap();
    let e = env(&[
        ("INTEGR8S_PORT", "9002"),
        ("INTEGR8S_EXECUTION__MAX_PER_USER", "3"),
        ("PATH", "/bin"),
    ]);
    let c = Config::load(Some(&path), &e, &CliOverrides::default()).unwrap();
    assert_eq!(c.server.port, 9002);
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.execution.max_concurrent, 7);
    assert_eq!(c.execution.max_per_user, 3);
    let cli = CliOverrides {
        port: Some(9003),
        ..Default::default()
    };
    assert_eq!(
        Config::load(Some(&path), &e, &cli).unwrap().server.port,
        9003
    );
}

#[test]
fn invalid_values_name_the_key_and_source() {
    let err = Config::load(
        None,
        &env(&[("INTEGR8S_SERVER__PORT", "eighty")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("server.port") && err.contains("INTEGR8S_SERVER__PORT"),
        "{err}"
    );

    let err = Config::load(
        None,
        &env(&[("INTEGR8S_HOST", "not an ip")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.host"), "{err}");

    let err = Config::load(
        None,
        &env(&[("INTEGR8S_EXECUTION__MEMORY_LIMIT", "lots")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("execution.memory_limit"), "{err}");

    let err = Config::load(
        None,
        &env(&[("INTEGR8S_AUTH__SECRET", "short")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth.secret"), "{err}");

    // Runs must never map to root or a system account.
    for low in ["0", "999"] {
        let err = Config::load(
            None,
            &env(&[("INTEGR8S_SANDBOX__UID_BASE", low)]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sandbox.uid_base"), "{err}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let err = Config::load(
        None,
        &env(&[("INTEGR8S_SERVER__PROT", "1")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("INTEGR8S_SERVER__PROT"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nprot = 1\n").unwrap();
    let err = Config::load(Some(&path), &env(&[]), &CliOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.prot") && err.contains("unknown key"),
        "{err}"
    );
}

#[test]
fn memory_sizes_parse() {
    assert_eq!(parse_memory("256Mi"), Some(256 << 20));
    assert_eq!(parse_memory("1Gi"), Some(1 << 30));
    assert_eq!(parse_memory("64Ki"), Some(64 << 10));
    assert_eq!(parse_memory("256MB"), None);
    assert_eq!(parse_memory("Mi"), None);
}

#[test]
fn limiter_redis_url_is_checked_and_redacted() {
    let c = Config::load(None, &env(&[]), &CliOverrides::default()).unwrap();
    assert_eq!(c.limiter.redis_url, "", "in memory by default");
    assert_eq!(c.limiter.key_prefix, "integr8s:");

    let e = env(&[
        (
            "INTEGR8S_LIMITER__REDIS_URL",
            "redis://:hunter2@127.0.0.1:6390/1",
        ),
        ("INTEGR8S_LIMITER__KEY_PREFIX", "staging:"),
    ]);
    let c = Config::load(None, &e, &CliOverrides::default()).unwrap();
    assert_eq!(c.limiter.redis_url, "redis://:hunter2@127.0.0.1:6390/1");
    assert_eq!(c.limiter.key_prefix, "staging:");
    let printed = format!("{c:#?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("127.0.0.1:6390"), "{printed}");

    for bad in ["http://127.0.0.1:6379", "localhost:6379", "redis://"] {
        let err = Config::load(
            None,
            &env(&[("INTEGR8S_LIMITER__REDIS_URL", bad)]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("limiter.redis_url") && err.contains("INTEGR8S_LIMITER__REDIS_URL"),
            "{bad}: {err}"
        );
    }
    let err = Config::load(
        None,
        &env(&[("INTEGR8S_LIMITER__KEY_PREFIX", "two words")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("limiter.key_prefix"), "{err}");
}

#[test]
fn database_urls_choose_by_scheme_and_hide_passwords() {
    for url in [
        "sqlite:///var/lib/integr8s/db.sqlite",
        "postgres://app:hunter2@db.internal:5432/integr8s",
        "postgresql://app@localhost/integr8s",
    ] {
        let c = Config::load(
            None,
            &env(&[("INTEGR8S_DATABASE__URL", url)]),
            &CliOverrides::default(),
        )
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(c.database_url(), url);
        let shown = format!("{:?}", c.database);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    let err = Config::load(
        None,
        &env(&[("INTEGR8S_DATABASE__URL", "mysql://root:hunter2@db/x")]),
        &CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("database.url") && err.contains("INTEGR8S_DATABASE__URL"),
        "{err}"
    );
    assert!(
        err.contains("postgres://"),
        "names what is supported: {err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn quotas_retention_and_streams_are_checked() {
    let c = Config::load(None, &env(&[]), &CliOverrides::default()).unwrap();
    assert!(
        c.execution.max_per_user < c.execution.max_concurrent,
        "fair defaults"
    );
    assert!(c.quotas.max_pending_per_user < c.execution.max_queue_length);
    let sweep = c.retention.sweeper();
    assert_eq!(sweep.interval, std::time::Duration::from_secs(3600));
    assert_eq!(
        sweep.keep.get("events"),
        Some(&std::time::Duration::from_secs(30 * 86_400))
    );
    let c = Config::load(
        None,
        &env(&[("INTEGR8S_RETENTION__EVENTS", "0")]),
        &CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(
        c.retention.sweeper().keep.get("events"),
        None,
        "0 keeps for ever"
    );
    for (var, key) in [
        ("INTEGR8S_RETENTION__EVENTS", "retention.events"),
        (
            "INTEGR8S_RETENTION__SWEEP_INTERVAL",
            "retention.sweep_interval",
        ),
    ] {
        let err = Config::load(None, &env(&[(var, "30")]), &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains(var), "{err}");
    }
    for (var, key) in [
        (
            "INTEGR8S_QUOTAS__MAX_SAVED_SCRIPTS",
            "quotas.max_saved_scripts",
        ),
        ("INTEGR8S_STREAMS__MAX_OPEN", "streams.max_open"),
        ("INTEGR8S_STREAMS__CATCH_UP_MS", "streams.catch_up_ms"),
    ] {
        let err = Config::load(None, &env(&[(var, "0")]), &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn the_k8s_section_is_the_k8s_crates_own() {
    let ours: toml::Table = DEFAULTS.parse().unwrap();
    let theirs: toml::Table = integr8s_k8s::DEFAULT_SECTION.parse().unwrap();
    assert_eq!(
        ours.get("k8s"),
        theirs.get("k8s"),
        "the [k8s] section of integr8s.default.toml differs from integr8s_k8s::DEFAULT_SECTION"
    );
    let config = Config::load(None, &HashMap::new(), &CliOverrides::default()).unwrap();
    assert_eq!(config.k8s, integr8s_k8s::K8sSettings::default());
}

#[test]
fn k8s_settings_come_from_the_environment_and_bad_ones_name_their_key() {
    let config = Config::load(
        None,
        &env(&[
            ("INTEGR8S_K8S__NAMESPACE", "executors"),
            ("INTEGR8S_K8S__CONNECTION", "in-cluster"),
            ("INTEGR8S_K8S__RUN_AS_USER", "2000"),
        ]),
        &CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(config.k8s.namespace, "executors");
    assert_eq!(config.k8s.run_as_user, 2000);
    for (var, value, key) in [
        ("INTEGR8S_K8S__NAMESPACE", "default", "k8s.namespace"),
        ("INTEGR8S_K8S__CONNECTION", "pigeon", "k8s.connection"),
        ("INTEGR8S_K8S__TMP_SIZE", "big", "k8s.tmp_size"),
    ] {
        let err = Config::load(None, &env(&[(var, value)]), &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("'{key}'")), "{err}");
        assert!(err.contains(var), "{err}");
    }
    let err = Config::load(
        None,
        &env(&[("INTEGR8S_K8S__NOPE", "1")]),
        &CliOverrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownEnv { .. }), "{err}");
}

#[test]
fn telemetry_takes_the_standard_endpoint_and_checks_its_values() {
    let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &CliOverrides::default());
    let c = load(&[]).unwrap();
    assert!(c.telemetry.otlp_endpoint.is_empty());
    assert_eq!(c.telemetry.sampling_rate, 0.1);
    let c = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
    assert_eq!(c.telemetry.otlp_endpoint, "http://collector:4318");
    let c = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("INTEGR8S_TELEMETRY__OTLP_ENDPOINT", "https://ours:4318"),
        ("INTEGR8S_TELEMETRY__SAMPLING_RATE", "0.5"),
    ])
    .unwrap();
    assert_eq!(c.telemetry.otlp_endpoint, "https://ours:4318");
    assert_eq!(c.telemetry.sampling_rate, 0.5);
    for (key, value, named) in [
        (
            "INTEGR8S_TELEMETRY__OTLP_ENDPOINT",
            "collector:4318",
            "telemetry.otlp_endpoint",
        ),
        (
            "INTEGR8S_TELEMETRY__SAMPLING_RATE",
            "1.5",
            "telemetry.sampling_rate",
        ),
        (
            "INTEGR8S_TELEMETRY__SAMPLING_RATE",
            "half",
            "telemetry.sampling_rate",
        ),
        (
            "INTEGR8S_TELEMETRY__SETTINGS_POLL_MS",
            "0",
            "telemetry.settings_poll_ms",
        ),
    ] {
        let e = load(&[(key, value)]).unwrap_err().to_string();
        assert!(e.contains(named), "{key}={value}: {e}");
    }
}
