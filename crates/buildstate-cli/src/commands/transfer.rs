//! `export REF` and `import FILE`: one build as the JSON document of SPEC §2.

use std::path::PathBuf;

use buildstate_core::BuildDocument;
use buildstate_store::ImportMode;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit, io_error};
use crate::{input, output};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// Write to this file instead of stdout
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The document, or `-` for stdin
    file: String,
    /// Replace a build with the same id or number (history, failures and artifacts too)
    #[arg(long)]
    replace: bool,
}

pub async fn export(a: ExportArgs, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let doc = ctx.store.export_build(b.id).await?;
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| CliError::internal(format!("cannot encode build {} as JSON: {e}", b.number)))?;
    match a.output {
        Some(path) => std::fs::write(&path, format!("{text}\n"))
            .map_err(|e| io_error(&format!("write {}", path.display()), &e)),
        None => output::line(text),
    }
}

pub async fn import(a: ImportArgs, ctx: &Ctx) -> Result<(), CliError> {
    let text = read_document(&a.file)?;
    // Parsing validates everything a hand edit or a torn copy could break, before the
    // store is touched.
    let parts = BuildDocument::parse(&text).map_err(|e| {
        CliError::new(Exit::BadDocument, format!("{} was not imported: {e}", describe(&a.file)))
            .with_hint("import only files written by `buildstate export`, whole and unedited")
    })?;
    let mode = if a.replace { ImportMode::Replace } else { ImportMode::CreateOnly };
    let b = ctx.store.import_build(parts, mode).await.map_err(|e| {
        let already = matches!(e, buildstate_store::StoreError::AlreadyExists { .. });
        let err = CliError::from(e);
        if already { err.with_hint("pass --replace to overwrite the stored build") } else { err }
    })?;
    output::build_or_line(
        ctx.json,
        &b,
        format!("imported build {} at {} ({})", b.number, output::state_label(&b), b.status),
    )
}

fn describe(file: &str) -> String {
    if file == "-" { "standard input".to_owned() } else { file.to_owned() }
}

fn read_document(file: &str) -> Result<String, CliError> {
    let bytes = if file == "-" {
        input::read_capped(
            std::io::stdin().lock(),
            "the document",
            "standard input",
            input::MAX_DOCUMENT_BYTES,
        )?
    } else {
        input::read_file(std::path::Path::new(file), "the document", input::MAX_DOCUMENT_BYTES)?
    };
    String::from_utf8(bytes)
        .map_err(|e| CliError::new(Exit::BadDocument, format!("{} is not UTF-8 text: {e}", describe(file))))
}
