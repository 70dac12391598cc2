//! `mtl ui`: the dashboard server (crate mtl-ui) in the foreground.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  mtl ui\n  mtl ui --db sweeps.db --port 9000 --open\n  \
mtl ui --host 0.0.0.0        # reachable from other machines, with an access token\n\n\
The page follows the database live: start it beside `mtl run` (or workers and `mtl merge`); new epochs \
and finished trials appear within two seconds. It only reads the database. Ctrl-C stops it.\n\
Views, security and the JSON interface: docs/dashboard.md.")]
pub struct UiArgs {
    /// The results database (it may not exist yet: the page says so until it does).
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0 for every interface).
    /// Off loopback every request must carry the random access token printed at start.
    #[arg(long, value_name = "ADDRESS")]
    host: Option<IpAddr>,
    /// Open the page in the default browser once the server listens.
    #[arg(long)]
    open: bool,
}

pub fn ui(args: UiArgs) -> anyhow::Result<ExitCode> {
    let mut options = mtl_ui::UiOptions::local(args.db.clone(), args.port);
    options.host_name = mtl_runner::provenance::host_name().unwrap_or_else(|| "localhost".into());
    if let Some(host) = args.host {
        options.host = host;
        if !host.is_loopback() {
            options.token = Some(mtl_ui::new_token()?);
        }
    }
    if !args.db.exists() {
        note!("no database at {} yet; the page will show it once `mtl run` creates it", args.db.display());
    }
    mtl_ui::serve(options, |bound| {
        // One line a script can read: the URL (with the token when there is one).
        println!("mtl ui: serving {} on {}", args.db.display(), bound.url);
        note!("Ctrl-C stops it");
        if args.open {
            crate::open_in_browser_url(&bound.url);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
