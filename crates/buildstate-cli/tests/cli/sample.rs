//! `init --sample`: the sample catalog and builds, and idempotence.

use serde_json::Value;

use crate::common::Env;

#[test]
fn loads_the_sample_once() {
    let env = Env::new();
    let first = env.json(&["init", "--sample"]);
    assert_eq!(first["sample"]["catalog_items_added"], 20);
    assert_eq!(first["sample"]["builds_added"].as_array().map(Vec::len), Some(5));
    assert!(first["schema_version"].as_u64().is_some_and(|v| v >= 1));

    let names = |kind: &str| -> Vec<String> {
        env.json(&[kind, "list"])
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names("platform"),
        ["aws-commercial", "aws-govcloud", "azure", "cloudfoundry", "gcp", "openstack"]
    );
    assert_eq!(names("os").len(), 10);
    assert!(names("os").contains(&"sles-15.7".to_owned()));
    assert_eq!(names("image-type"), ["base", "hana", "openvpn", "sapapp"]);
    assert_eq!(env.json(&["os", "show", "sles-15.6"])["display_name"], "SLES 15 SP6");
    assert_eq!(env.json(&["platform", "show", "aws-govcloud"])["region"], "us-gov-east-1");

    let builds = env.json(&["build", "list"]);
    let find = |status: &str, state: u64| -> Value {
        builds
            .as_array()
            .expect("builds")
            .iter()
            .find(|b| b["status"] == status && b["state"] == state)
            .cloned()
            .unwrap_or_else(|| panic!("no {status} build at {state}: {builds}"))
    };
    find("completed", 100);
    assert_eq!(find("running", 45)["attempt_open"], true);
    let stuck = find("failed", 25);
    assert_eq!((stuck["attempt"].as_u64(), stuck["needs_intervention"].as_bool()), (Some(3), Some(true)));
    assert_eq!(find("failed", 10)["needs_intervention"], false);
    find("cancelled", 20);
    // Durations of open builds grow; compare what a rerun could have changed.
    let summary = || -> Vec<(String, u64)> {
        env.json(&["build", "list"])
            .as_array()
            .expect("builds")
            .iter()
            .map(|b| {
                (
                    b["number"].as_str().unwrap_or_default().to_owned(),
                    b["version"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let before = summary();

    let again = env.ok(&["init", "--sample"]);
    assert!(again.contains("nothing added"), "{again}");
    assert_eq!(summary(), before);
    assert_eq!(names("os").len(), 10);
}

#[test]
fn tops_up_a_partial_catalog_without_adding_builds() {
    let env = Env::new().with_catalog();
    env.build("own-1");
    let out = env.json(&["init", "--sample"]);
    assert_eq!(out["sample"]["catalog_items_added"], 17);
    assert_eq!(out["sample"]["builds_added"].as_array().map(Vec::len), Some(0));
    assert_eq!(env.json(&["build", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn every_read_command_prints_json() {
    let env = Env::new();
    env.ok(&["init", "--sample"]);
    let builds = env.json(&["build", "list"]);
    let stuck = builds
        .as_array()
        .and_then(|all| all.iter().find(|b| b["needs_intervention"] == true))
        .and_then(|b| b["number"].as_str())
        .expect("a build needing intervention")
        .to_owned();
    env.ok(&["meta", "set", &stuck, "owner", "team-a"]);
    let reads: &[&[&str]] = &[
        &["init"],
        &["platform", "list"],
        &["platform", "show", "azure"],
        &["os", "list"],
        &["os", "show", "rhel-9.6"],
        &["image-type", "list"],
        &["image-type", "show", "hana"],
        &["build", "list", "--status", "failed"],
        &["build", "show", &stuck],
        &["history", &stuck],
        &["failure", "list", "--unresolved"],
        &["meta", "list", &stuck],
        &["meta", "get", &stuck, "owner"],
        &["artifact", "list", &stuck],
    ];
    for args in reads {
        // `json` asserts exit 0 and that stdout parses.
        env.json(args);
    }
    // `resume` answers 11 for this build, with JSON all the same.
    let r = env.run(&["resume", &stuck, "--json"]);
    assert_eq!(r.code, 11);
    let v: Value = serde_json::from_str(&r.stdout).expect("resume JSON");
    assert_eq!(v["reason"], "needs-intervention");
    // `export` is JSON without asking.
    let doc: Value = serde_json::from_str(&env.export(&stuck)).expect("export JSON");
    assert_eq!(doc["format"], "buildstate.build/v1");
}
