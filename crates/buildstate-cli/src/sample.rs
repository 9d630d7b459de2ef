//! The sample catalog of SPEC §2 and a handful of builds in assorted states, made
//! through real `Store::apply` transitions so that they look exactly like real builds.

use std::collections::BTreeMap;

use buildstate_core::{
    Artifact, ArtifactKind, Build, CatalogItem, Command, FailureClass, FailureInfo, FailureType, ImageType,
    Name, NewBuild, OsVersion, Platform, StateCatalog,
};
use buildstate_store::{BuildFilter, Guard, Store, StoreError, StoreResult};

/// What a load added.
#[derive(Debug, Default, serde::Serialize)]
pub struct Loaded {
    pub catalog_items_added: usize,
    pub builds_added: Vec<String>,
}

const PLATFORMS: [(&str, &str, &str, Option<&str>); 6] = [
    ("azure", "Azure", "azure", Some("eastus")),
    ("aws-commercial", "AWS Commercial", "aws", Some("us-east-1")),
    ("aws-govcloud", "AWS GovCloud", "aws", Some("us-gov-east-1")),
    ("gcp", "Google Cloud", "gcp", Some("us-central1")),
    ("openstack", "OpenStack", "openstack", Some("datacenter-1")),
    ("cloudfoundry", "Cloud Foundry", "cloudfoundry", None),
];

const OS_VERSIONS: [(&str, &str, &str, u32, Option<u32>); 10] = [
    ("rhel-8.8", "RHEL 8.8", "rhel", 8, Some(8)),
    ("rhel-8.10", "RHEL 8.10", "rhel", 8, Some(10)),
    ("rhel-9.2", "RHEL 9.2", "rhel", 9, Some(2)),
    ("rhel-9.6", "RHEL 9.6", "rhel", 9, Some(6)),
    ("sles-15", "SLES 15", "sles", 15, None),
    ("sles-15.6", "SLES 15 SP6", "sles", 15, Some(6)),
    ("sles-15.7", "SLES 15 SP7", "sles", 15, Some(7)),
    ("ubuntu-20.04", "Ubuntu 20.04 LTS", "ubuntu", 20, Some(4)),
    ("ubuntu-22.04", "Ubuntu 22.04 LTS", "ubuntu", 22, Some(4)),
    ("ubuntu-24.04", "Ubuntu 24.04 LTS", "ubuntu", 24, Some(4)),
];

const IMAGE_TYPES: [(&str, &str, &str); 4] = [
    ("base", "Base", "hardened base image"),
    ("hana", "SAP HANA", "SAP HANA database server"),
    ("sapapp", "SAP Application", "SAP application server"),
    ("openvpn", "OpenVPN", "OpenVPN access server"),
];

fn name(s: &str) -> StoreResult<Name> {
    Name::new(s).map_err(|e| StoreError::InvalidInput(e.to_string()))
}

/// The sample catalog of SPEC §2: also the well-known names `--add-missing` adds.
pub(crate) fn catalog() -> StoreResult<Vec<CatalogItem>> {
    let mut items = Vec::new();
    for (n, display, provider, region) in PLATFORMS {
        items.push(CatalogItem::Platform(Platform {
            name: name(n)?,
            display_name: display.into(),
            provider: provider.into(),
            region: region.map(Into::into),
        }));
    }
    for (n, display, family, major, minor) in OS_VERSIONS {
        items.push(CatalogItem::Os(OsVersion {
            name: name(n)?,
            display_name: display.into(),
            family: family.into(),
            major,
            minor,
        }));
    }
    for (n, display, description) in IMAGE_TYPES {
        items.push(CatalogItem::ImageType(ImageType {
            name: name(n)?,
            display_name: display.into(),
            description: description.into(),
        }));
    }
    Ok(items)
}

/// Adds what is missing of the sample catalog, and the sample builds if the store has
/// no builds at all. Running it again adds nothing.
pub async fn load(store: &dyn Store, actor: &str) -> StoreResult<Loaded> {
    let mut loaded = Loaded::default();
    for item in catalog()? {
        let known = store.catalog(item.kind()).await?;
        if known.iter().any(|k| k.name() == item.name()) {
            continue;
        }
        match store.add_catalog_item(&item).await {
            Ok(()) => loaded.catalog_items_added += 1,
            // A concurrent `init --sample` added it first: that is the goal anyway.
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let any = store.list_builds(&BuildFilter { limit: Some(1), ..BuildFilter::default() }).await?;
    if any.is_empty() {
        loaded.builds_added = builds(store, actor).await?;
    }
    Ok(loaded)
}

/// A running sample build and the store it lives in.
struct Driver<'a> {
    store: &'a dyn Store,
    actor: &'a str,
    build: Build,
}

impl Driver<'_> {
    async fn apply(&mut self, cmd: Command) -> StoreResult<()> {
        self.build = self.store.apply(self.build.id, &cmd, Guard::none()).await?.build;
        Ok(())
    }

    async fn start(&mut self) -> StoreResult<()> {
        let state = self.build.state;
        self.apply(Command::Start { state, actor: self.actor.into(), log: None, force: false }).await
    }

    /// Start and complete every milestone below `code`.
    async fn complete_below(&mut self, code: u8) -> StoreResult<()> {
        while self.build.state.get() < code && !self.build.is_delivered() {
            self.start().await?;
            let state = self.build.state;
            self.apply(Command::Complete { state, actor: self.actor.into(), exit_code: Some(0), log: None })
                .await?;
        }
        Ok(())
    }

    async fn fail(&mut self, failure: FailureInfo) -> StoreResult<()> {
        self.start().await?;
        let state = self.build.state;
        let cmd = Command::Fail { state, actor: self.actor.into(), failure, max_attempts: 3, log: None };
        self.apply(cmd).await
    }

    async fn retry(&mut self, reason: &str) -> StoreResult<()> {
        self.apply(Command::Retry { actor: self.actor.into(), reason: Some(reason.into()), force: false })
            .await
    }
}

fn failure(kind: &str, component: &str, message: &str, exit_code: i32) -> StoreResult<FailureInfo> {
    Ok(FailureInfo {
        failure_type: kind.parse::<FailureType>().map_err(|e| StoreError::InvalidInput(e.to_string()))?,
        class: FailureClass::Transient,
        component: Some(component.into()),
        message: message.into(),
        details: BTreeMap::new(),
        exit_code: Some(exit_code),
    })
}

async fn builds(store: &dyn Store, actor: &str) -> StoreResult<Vec<String>> {
    let mut numbers = Vec::new();
    let new = |platform: &str, os: &str, image: &str| -> StoreResult<NewBuild> {
        Ok(NewBuild {
            platform: name(platform)?,
            os: name(os)?,
            image_type: name(image)?,
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: actor.into(),
            ci_url: None,
            metadata: BTreeMap::new(),
        })
    };
    let plans = [
        new("aws-commercial", "rhel-9.6", "base")?,
        new("azure", "ubuntu-22.04", "base")?,
        new("aws-govcloud", "sles-15.6", "hana")?,
        new("gcp", "rhel-8.10", "sapapp")?,
        new("openstack", "ubuntu-20.04", "openvpn")?,
    ];
    for (i, plan) in plans.iter().enumerate() {
        let build = store.create_build(plan).await?;
        let mut d = Driver { store, actor, build };
        match i {
            // Delivered, with the image it published.
            0 => {
                d.complete_below(101).await?;
                let ami = Artifact {
                    name: "ami-us-east-1".into(),
                    kind: ArtifactKind::Image,
                    uri: "ami-0a1b2c3d4e5f60718".into(),
                    region: Some("us-east-1".into()),
                    cloud: Some("aws".into()),
                    size_bytes: None,
                    sha256: None,
                    created_at: buildstate_store::now(),
                    milestone: None,
                    invalidated_at: None,
                };
                store.add_artifact(d.build.id, &ami, Guard::none()).await?;
            }
            // Running at 45 (storage) with its attempt open.
            1 => {
                d.complete_below(45).await?;
                d.start().await?;
            }
            // Failed at 25 three times: retries used up, a person must look.
            2 => {
                d.complete_below(25).await?;
                let f = failure(
                    "ansible",
                    "25-security.yml",
                    "TASK [selinux : enforce] FAILED: policy load error",
                    2,
                )?;
                d.fail(f.clone()).await?;
                d.retry("mirror was flaky").await?;
                d.fail(f.clone()).await?;
                d.retry("one more time").await?;
                d.fail(f).await?;
            }
            // Failed once at 10 (green-image): retryable.
            3 => {
                d.complete_below(10).await?;
                d.fail(failure("packer", "amazon-ebs", "timeout waiting for SSH to become available", 1)?)
                    .await?;
            }
            // Cancelled at 20.
            _ => {
                d.complete_below(20).await?;
                let cmd = Command::Cancel {
                    actor: actor.into(),
                    reason: "superseded by a newer base image".into(),
                };
                d.apply(cmd).await?;
            }
        }
        numbers.push(d.build.number.to_string());
    }
    Ok(numbers)
}
