//! `platform|os|image-type add|list|show|remove`: one implementation, generic over the
//! kind; only the `add` arguments and the table columns differ.

use buildstate_core::{CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use clap::Subcommand;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum Args<A: AddArgs> {
    /// Add an entry
    Add(A),
    /// List the entries
    List,
    /// Show one entry
    Show { name: Name },
    /// Remove an entry that no build refers to
    Remove { name: Name },
}

pub type PlatformArgs = Args<PlatformAdd>;
pub type OsArgs = Args<OsAdd>;
pub type ImageTypeArgs = Args<ImageTypeAdd>;

/// The kind-specific part: how `add` arguments become a catalog item.
pub trait AddArgs: clap::Args + clap::FromArgMatches + std::fmt::Debug {
    const KIND: CatalogKind;
    fn into_item(self) -> CatalogItem;
}

#[derive(Debug, clap::Args)]
pub struct PlatformAdd {
    name: Name,
    /// Cloud provider: aws, azure, gcp, openstack, cloudfoundry, …
    #[arg(long)]
    provider: Name,
    #[arg(long, value_parser = input::label)]
    display_name: Option<String>,
    #[arg(long, value_parser = input::label)]
    region: Option<String>,
}

impl AddArgs for PlatformAdd {
    const KIND: CatalogKind = CatalogKind::Platform;
    fn into_item(self) -> CatalogItem {
        CatalogItem::Platform(Platform {
            display_name: self.display_name.unwrap_or_else(|| self.name.to_string()),
            name: self.name,
            provider: self.provider.to_string(),
            region: self.region.filter(|r| !r.is_empty()),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct OsAdd {
    name: Name,
    /// rhel, sles, ubuntu, …
    #[arg(long)]
    family: Name,
    #[arg(long)]
    major: u32,
    #[arg(long)]
    minor: Option<u32>,
    #[arg(long, value_parser = input::label)]
    display_name: Option<String>,
}

impl AddArgs for OsAdd {
    const KIND: CatalogKind = CatalogKind::Os;
    fn into_item(self) -> CatalogItem {
        CatalogItem::Os(OsVersion {
            display_name: self.display_name.unwrap_or_else(|| self.name.to_string()),
            name: self.name,
            family: self.family.to_string(),
            major: self.major,
            minor: self.minor,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct ImageTypeAdd {
    name: Name,
    #[arg(long, value_parser = input::label)]
    display_name: Option<String>,
    #[arg(long, value_parser = input::label)]
    description: Option<String>,
}

impl AddArgs for ImageTypeAdd {
    const KIND: CatalogKind = CatalogKind::ImageType;
    fn into_item(self) -> CatalogItem {
        CatalogItem::ImageType(ImageType {
            display_name: self.display_name.unwrap_or_else(|| self.name.to_string()),
            name: self.name,
            description: self.description.unwrap_or_default(),
        })
    }
}

pub async fn run<A: AddArgs>(args: Args<A>, ctx: &Ctx) -> Result<(), CliError> {
    let kind = A::KIND;
    match args {
        Args::Add(a) => {
            let item = a.into_item();
            ctx.store.add_catalog_item(&item).await?;
            if ctx.json { output::json(&item) } else { output::line(format!("added {kind} {}", item.name())) }
        }
        Args::List => {
            let items = ctx.store.catalog(kind).await?;
            if ctx.json {
                return output::json(&items);
            }
            let mut t = output::table(header(kind));
            for item in &items {
                t.add_row(row(item));
            }
            output::print_table(&t)
        }
        Args::Show { name } => {
            let item = ctx.store.catalog_item(kind, &name).await?;
            if ctx.json {
                return output::json(&item);
            }
            let mut t = output::table(&["FIELD", "VALUE"]);
            for (field, value) in header(kind).iter().zip(row(&item)) {
                t.add_row(vec![field.to_lowercase(), value]);
            }
            output::print_table(&t)
        }
        Args::Remove { name } => {
            ctx.store.remove_catalog_item(kind, &name).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "removed": { "kind": kind, "name": name } }))
            } else {
                output::line(format!("removed {kind} {name}"))
            }
        }
    }
}

fn header(kind: CatalogKind) -> &'static [&'static str] {
    match kind {
        CatalogKind::Platform => &["NAME", "DISPLAY NAME", "PROVIDER", "REGION"],
        CatalogKind::Os => &["NAME", "DISPLAY NAME", "FAMILY", "MAJOR", "MINOR"],
        CatalogKind::ImageType => &["NAME", "DISPLAY NAME", "DESCRIPTION"],
    }
}

fn row(item: &CatalogItem) -> Vec<String> {
    let opt = |o: Option<String>| o.unwrap_or_else(|| "-".to_owned());
    match item {
        CatalogItem::Platform(p) => {
            vec![p.name.to_string(), p.display_name.clone(), p.provider.clone(), opt(p.region.clone())]
        }
        CatalogItem::Os(o) => vec![
            o.name.to_string(),
            o.display_name.clone(),
            o.family.clone(),
            o.major.to_string(),
            opt(o.minor.map(|m| m.to_string())),
        ],
        CatalogItem::ImageType(i) => {
            vec![i.name.to_string(), i.display_name.clone(), output::cell(&i.description, 60)]
        }
    }
}
